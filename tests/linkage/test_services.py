"""Linkage approvals: only the platform operator grants and revokes; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.linkage import services
from portal.linkage.models import LinkageApproval
from tests.factories import SocietyFactory, UserFactory, give_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp", is_staff=True)
    give_totp(user)
    return user


@pytest.fixture
def two(society):  # type: ignore[no-untyped-def]
    return [society, SocietyFactory(slug="jges")]


def grant(by, user, societies, **overrides):  # type: ignore[no-untyped-def]
    arguments = {"purpose": "病理・内視鏡の対応付け", "valid_until": timezone.localdate() + timedelta(days=30)}
    return services.linkage_approval_grant(user=user, societies=societies, by=by, **(arguments | overrides))


def nothing_recorded():  # type: ignore[no-untyped-def]
    assert LinkageApproval.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="linkage.").exists()


def test_operator_grants_audited_and_user_told(operator, society_admin, two, mailoutbox,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approval = grant(operator, society_admin, two)

    assert approval.granted_by == operator
    assert sorted(s.slug for s in approval.societies.all()) == ["jges", "jsp"]
    event = AuditEvent.objects.get(action="linkage.approval_granted")
    assert event.actor_id == operator.pk
    assert event.details == {"user": society_admin.pk, "societies": ["jges", "jsp"],
                             "valid_until": approval.valid_until.isoformat()}
    assert [m.to for m in mailoutbox] == [[society_admin.email]]
    assert mailoutbox[0].subject == "[Record linkage] Linkage approval granted"


@pytest.mark.parametrize("who", ["society_admin", "staff_without_mfa", "auditor"])
def test_only_the_operator_with_mfa_grants(request, society_admin, two, who):
    by = UserFactory(is_staff=True) if who == "staff_without_mfa" else request.getfixturevalue(who)

    with pytest.raises(PermissionDenied):
        grant(by, society_admin, two)

    nothing_recorded()


@pytest.mark.parametrize("bad, field", [
    ({"purpose": "  "}, "purpose"),
    ({"valid_until": timezone.localdate() - timedelta(days=1)}, "valid_until"),
    ({"societies_count": 1}, "societies"),
])
def test_grant_bad_input_refused(operator, society_admin, two, bad, field):
    societies = two[: bad.pop("societies_count", 2)]

    with pytest.raises(ValidationError) as caught:
        grant(operator, society_admin, societies, **bad)

    assert list(caught.value.error_dict) == [field]
    nothing_recorded()


def test_revoke_audited_once(operator, society_admin, two):
    approval = grant(operator, society_admin, two)

    services.linkage_approval_revoke(approval=approval, by=operator)

    approval.refresh_from_db()
    assert approval.revoked_by == operator
    assert approval.revoked_at is not None
    with pytest.raises(ValidationError):
        services.linkage_approval_revoke(approval=approval, by=operator)
    assert AuditEvent.objects.filter(action="linkage.approval_revoked").count() == 1


def test_revoke_by_society_admin_refused(operator, society_admin, two):
    approval = grant(operator, society_admin, two)

    with pytest.raises(PermissionDenied):
        services.linkage_approval_revoke(approval=approval, by=society_admin)

    approval.refresh_from_db()
    assert approval.revoked_at is None
    assert not AuditEvent.objects.filter(action="linkage.approval_revoked").exists()


def test_covering_needs_one_approval_covering_all(operator, society_admin, two):
    third = SocietyFactory(slug="jrs")
    grant(operator, society_admin, [two[0], two[1]])
    grant(operator, society_admin, [two[1], third])

    assert services.covering_approval(society_admin, two) is not None
    assert services.covering_approval(society_admin, [two[1], third]) is not None
    assert services.covering_approval(society_admin, [two[0], third]) is None
    assert services.covering_approval(society_admin, [*two, third]) is None
    assert sorted(s.slug for s in services.approved_societies(society_admin)) == ["jges", "jrs", "jsp"]


def test_expired_approval_no_longer_covers(operator, society_admin, two):
    approval = grant(operator, society_admin, two, valid_until=timezone.localdate())

    assert services.covering_approval(society_admin, two) == approval
    LinkageApproval.objects.filter(pk=approval.pk).update(valid_until=timezone.localdate() - timedelta(days=1))
    assert services.covering_approval(society_admin, two) is None
    assert list(services.approved_societies(society_admin)) == []
