"""The lifecycle of a grant: start, guardian permissions, pause/resume, extend, revoke, end, expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal.access.models import Grant, RequestUser
from portal.access.selectors import active_grants
from portal.access.services.grants import (
    grant_end,
    grant_expire_due,
    grant_extend_to_release,
    grant_refresh,
    grant_revoke,
    grant_start,
)
from portal.access.tasks import expire_grants_task, refresh_grants_task
from portal.agreements.models import AgreementTemplateVersion
from portal.audit.models import AuditEvent
from portal.optout.models import OptOutNotice
from tests.access.test_links import make_world
from tests.factories import SocietyFactory, UserFactory
from tests.factories.access import AccessRequestFactory
from tests.factories.datasets import DatasetFactory, FileSpec, make_release

pytestmark = pytest.mark.django_db

PERM = "download_release"


@pytest.fixture
def world(society, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    return make_world(society)


def _perms(user, release) -> list[str]:  # type: ignore[no-untyped-def]
    """What the grants in force give ``user`` on ``release``, read live (nothing is stored beside them)."""
    held = active_grants().filter(users=user, releases=release, releases__status="available").exists()
    return [PERM] if held else []


def test_grant_start_by_society_admin(society, society_admin, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    mine = make_release(DatasetFactory(society=society), [FileSpec("a" * 32)])
    theirs = make_release(DatasetFactory(society=SocietyFactory()), [FileSpec("b" * 32)])
    lead, colleague = UserFactory(), UserFactory()
    request = AccessRequestFactory(applicant=lead, reference="DAR-2026-00001")
    request.releases.set([mine, theirs])
    RequestUser.objects.create(access_request=request, user=lead, role="principal", ethics_training=True)
    RequestUser.objects.create(access_request=request, user=colleague, role="co_investigator", ethics_training=True)

    grant = grant_start(access_request=request, society=society, by=society_admin)

    assert grant.reference == f"G-{timezone.localdate().year}-00001"
    assert (grant.access_request, grant.society, grant.status) == (request, society, Grant.Status.ACTIVE)
    assert sorted(u.pk for u in grant.users.all()) == sorted([lead.pk, colleague.pk])
    assert list(grant.releases.all()) == [mine]  # only this society's releases
    assert timezone.localtime(grant.expires_at).date() == request.period_end + timedelta(days=1)
    assert _perms(lead, mine) == [PERM] and _perms(colleague, mine) == [PERM]
    assert _perms(lead, theirs) == []
    event = AuditEvent.objects.get(action="access.grant_started")
    assert event.details["releases"] == [str(mine)]
    with pytest.raises(ValidationError):  # one grant in force per application and society
        grant_start(access_request=request, society=society, by=society_admin)


def test_grant_start_refused_for_others(society, steward, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    release = make_release(DatasetFactory(society=society), [FileSpec("a" * 32)])
    request = AccessRequestFactory()
    request.releases.set([release])
    events = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        grant_start(access_request=request, society=society, by=steward)
    assert Grant.objects.count() == 0
    assert AuditEvent.objects.count() == events


def _start_perms(world):  # type: ignore[no-untyped-def]
    assert _perms(world.user, world.release) == [PERM]


def test_revoke_removes_permissions(world, steward, applicant):
    _start_perms(world)
    with pytest.raises(PermissionDenied):
        grant_revoke(grant=world.grant, reason="x", by=applicant)
    with pytest.raises(ValidationError):
        grant_revoke(grant=world.grant, reason="  ", by=steward)
    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.ACTIVE and _perms(world.user, world.release) == [PERM]

    grant_revoke(grant=world.grant, reason="目的外利用", by=steward)

    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.REVOKED and world.grant.ended_at is not None
    assert _perms(world.user, world.release) == [] and _perms(world.other, world.release) == []
    assert AuditEvent.objects.get(action="access.grant_revoked").details == {"reason": "目的外利用"}


def test_end_removes_permissions_and_is_idempotent(world, steward):
    _start_perms(world)
    grant_end(grant=world.grant, by=steward)
    grant_end(grant=world.grant, by=steward)
    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.ENDED
    assert _perms(world.user, world.release) == []
    assert AuditEvent.objects.filter(action="access.grant_ended").count() == 1


def test_expiry_by_the_beat_task(world):
    _start_perms(world)
    assert grant_expire_due() == 0
    Grant.objects.filter(pk=world.grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert expire_grants_task.apply().get() == 1
    assert expire_grants_task.apply().get() == 0  # idempotent

    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.EXPIRED
    assert _perms(world.user, world.release) == []
    assert AuditEvent.objects.filter(action="access.grant_expired").count() == 1


def test_permission_kept_while_another_grant_holds_the_release(world):
    from tests.factories.datasets import active_grant

    _start_perms(world)
    active_grant([world.user], [world.release])
    Grant.objects.filter(pk=world.grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert grant_expire_due() == 1
    assert _perms(world.user, world.release) == [PERM]
    assert _perms(world.other, world.release) == []


def test_refresh_pauses_and_resumes(world):
    _start_perms(world)
    assert grant_refresh(grant=world.grant).status == Grant.Status.ACTIVE
    OptOutNotice.objects.filter(pk=world.notice.pk).update(
        status=OptOutNotice.Status.WITHDRAWN, withdrawn_at=timezone.now(), withdrawal_reason="試験のため取下げ")

    assert refresh_grants_task.apply().get() == 1
    world.grant.refresh_from_db()
    assert world.grant.status == Grant.Status.PAUSED
    assert world.grant.paused_reasons == ["No published opt-out notice covers dataset gastric."]
    assert _perms(world.user, world.release) == []
    assert refresh_grants_task.apply().get() == 0  # nothing new

    OptOutNotice.objects.filter(pk=world.notice.pk).update(status=OptOutNotice.Status.PUBLISHED)
    grant = grant_refresh(grant=world.grant)
    assert (grant.status, grant.paused_reasons) == (Grant.Status.ACTIVE, [])
    assert _perms(world.user, world.release) == [PERM]
    assert [e.action for e in AuditEvent.objects.filter(action__in=["access.grant_paused", "access.grant_resumed"])
            .order_by("id")] == ["access.grant_paused", "access.grant_resumed"]


def test_extend_to_a_newer_release(world, society_admin, steward):
    _start_perms(world)
    newer = make_release(world.release.dataset, [FileSpec("c" * 32)])
    with pytest.raises(PermissionDenied):
        grant_extend_to_release(grant=world.grant, release=newer, by=steward)
    with pytest.raises(ValidationError):  # not newer
        grant_extend_to_release(grant=world.grant, release=world.release, by=society_admin)
    assert list(world.grant.releases.all()) == [world.release]

    grant_extend_to_release(grant=world.grant, release=newer, by=society_admin)

    assert sorted(r.version for r in world.grant.releases.all()) == [1, 2]
    assert _perms(world.user, newer) == [PERM]
    assert AuditEvent.objects.filter(action="access.grant_extended").count() == 1


def test_extend_refused_when_the_agreement_changed(world, society_admin):
    newer = make_release(world.release.dataset, [FileSpec("c" * 32)])
    signed = world.grant.access_request.agreements.get()
    template = signed.template_version.template
    AgreementTemplateVersion.objects.filter(pk=signed.template_version_id).update(status="superseded")
    template.current_version = AgreementTemplateVersion.objects.create(
        template=template, number=2, status="published", body_ja="改定", published_at=timezone.now(),
        resign_on_new_version=True,
    )
    template.save(update_fields=["current_version"])

    with pytest.raises(ValidationError) as error:
        grant_extend_to_release(grant=world.grant, release=newer, by=society_admin)

    assert "apply again" in str(error.value)
    assert list(world.grant.releases.all()) == [world.release]
    assert AuditEvent.objects.filter(action="access.grant_extended").count() == 0
