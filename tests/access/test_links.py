"""Signed download links: issued only when the grant is usable, refused (403 + audit) every way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.access import links
from portal.access.links import LinkRateLimited, LinkRefused, link_issue, link_verify
from portal.access.models import Download, Grant, RequestUser, SecurityAnswer
from portal.access.services.grants import grant_revoke
from portal.audit.models import AuditEvent
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.ethics.models import Protocol
from portal.optout.models import OptOutNotice, OptOutRequest
from tests.factories import UserFactory
from tests.factories.access import granted_request
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice
from tests.factories.ethics import permitted_protocol

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 40  # 10,240 bytes


@dataclass
class World:
    user: object
    other: object
    grant: Grant
    release: DatasetRelease
    file: ReleaseFile
    notice: OptOutNotice


def make_world(society, *, content: bytes = CONTENT) -> World:  # type: ignore[no-untyped-def]
    user = UserFactory(email="researcher@company.example.jp")
    other = UserFactory(email="colleague@company.example.jp")
    dataset = DatasetFactory(society=society, slug="gastric")
    release = make_release(dataset, [FileSpec("a" * 32, content=content, path="cases/a.png"),
                                     FileSpec("b" * 32, path="cases/b.png")])
    notice = published_notice(dataset)
    request, grant = granted_request([user, other], [release], society=society)
    request.ethics_protocol = permitted_protocol()
    request.save(update_fields=["ethics_protocol"])
    SecurityAnswer.objects.create(access_request=request, item="encryption", status="done")
    return World(user, other, grant, release, release.files.get(path="cases/a.png"), notice)


@pytest.fixture
def world(society, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    return make_world(society)


def _url(token: str) -> str:
    return reverse("access:download", args=[token])


def _refused(client, token, reason):  # type: ignore[no-untyped-def]
    """Assert a 403 with ``reason``, its audit event, and no Download recorded."""
    downloads = Download.objects.count()
    before = AuditEvent.objects.filter(action="access.download_refused").count()
    response = client.get(_url(token))
    assert response.status_code == 403
    assert response.json()["reason"] == reason
    events = AuditEvent.objects.filter(action="access.download_refused").order_by("-id")
    assert events.count() == before + 1
    assert events[0].details["reason"] == reason
    assert Download.objects.count() == downloads
    return response


def test_link_issued_audited_and_downloads(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    event = AuditEvent.objects.get(action="access.link_issued")
    assert event.details["file"] == world.file.pk
    assert (link.expires_at - timezone.now()).total_seconds() == pytest.approx(600, abs=5)

    client.force_login(world.user)
    response = client.get(_url(link.token))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Content-Type"] == "image/png"
    assert response["ETag"] == f'"{world.file.sha256}"'
    assert response["Accept-Ranges"] == "bytes"
    download = Download.objects.get()
    assert (download.user, download.file, download.via, download.byte_range) == (world.user, world.file, "stream", "")
    assert AuditEvent.objects.filter(action="access.downloaded").count() == 1


def test_revocation_closes_links_already_issued(world, client, steward):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    grant_revoke(grant=world.grant, reason="契約違反", by=steward)
    client.force_login(world.user)
    _refused(client, link.token, "revoked")


def test_expired_grant_refuses(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    Grant.objects.filter(pk=world.grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(world.user)
    _refused(client, link.token, "grant_expired")


def _lapse_protocol(world):  # type: ignore[no-untyped-def]
    Protocol.objects.filter(pk=world.grant.access_request.ethics_protocol_id).update(status="suspended")


def _lapse_dataset_protocol(world):  # type: ignore[no-untyped-def]
    Protocol.objects.filter(pk=world.release.dataset.protocol_id).update(
        approved_until=timezone.localdate() - timedelta(days=1))


def _lapse_notice(world):  # type: ignore[no-untyped-def]
    OptOutNotice.objects.filter(pk=world.notice.pk).update(
        status=OptOutNotice.Status.WITHDRAWN, withdrawn_at=timezone.now(), withdrawal_reason="試験のため取下げ")


def _lapse_agreement(world):  # type: ignore[no-untyped-def]
    from portal.agreements.models import AgreementTemplateVersion

    signed = world.grant.access_request.agreements.get()
    template = signed.template_version.template
    AgreementTemplateVersion.objects.filter(pk=signed.template_version_id).update(status="superseded")
    newer = AgreementTemplateVersion.objects.create(
        template=template, number=2, status="published", body_ja="第1条 改定", published_at=timezone.now(),
        resign_on_new_version=True,
    )
    template.current_version = newer
    template.save(update_fields=["current_version"])


def _lapse_security(world):  # type: ignore[no-untyped-def]
    SecurityAnswer.objects.filter(access_request=world.grant.access_request).update(
        answered_at=timezone.now() - timedelta(days=366))


def _lapse_training(world):  # type: ignore[no-untyped-def]
    RequestUser.objects.filter(access_request=world.grant.access_request, user=world.user).update(
        ethics_training=False)


@pytest.mark.parametrize("lapse", [_lapse_protocol, _lapse_dataset_protocol, _lapse_notice, _lapse_agreement,
                                   _lapse_security, _lapse_training])
def test_each_lapse_closes_links_at_once_and_refuses_new_ones(world, client, lapse):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    lapse(world)
    client.force_login(world.user)
    _refused(client, link.token, "grant_unusable")
    issued = AuditEvent.objects.filter(action="access.link_issued").count()
    with pytest.raises(LinkRefused):
        link_issue(grant=world.grant, file=world.file, user=world.user)
    assert AuditEvent.objects.filter(action="access.link_issued").count() == issued
    assert AuditEvent.objects.filter(action="access.link_refused").count() == 1


def test_withdrawn_release_refuses(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    DatasetRelease.objects.filter(pk=world.release.pk).update(
        status=DatasetRelease.Status.WITHDRAWN, withdrawn_at=timezone.now(), withdrawal_reason="試験のため取下げ")
    client.force_login(world.user)
    _refused(client, link.token, "grant_unusable")  # its only release: the grant pauses too


def test_withdrawn_release_refuses_while_another_is_available(world, client):
    newer = make_release(world.release.dataset, [FileSpec("c" * 32)])
    world.grant.releases.add(newer)
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    DatasetRelease.objects.filter(pk=world.release.pk).update(
        status=DatasetRelease.Status.WITHDRAWN, withdrawn_at=timezone.now(), withdrawal_reason="試験のため取下げ")
    client.force_login(world.user)
    _refused(client, link.token, "release_withdrawn")


def test_opted_out_subject_refuses(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    OptOutRequest.objects.create(
        handled_by=UserFactory(), reference="OR-T1", society=world.release.dataset.society,
        subject_pseudonym=world.file.subject_pseudonym, received_at=timezone.now(), channel="phone",
        requester_type="subject", identity_verification="保険証で確認", extent="future_only",
        action_taken="stop_use",
    )
    client.force_login(world.user)
    _refused(client, link.token, "opted_out")


def test_another_user_and_no_user_refused(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    _refused(client, link.token, "not_signed_in")
    client.force_login(world.other)  # a named user too, but not the one the link was issued to
    _refused(client, link.token, "other_user")


def test_tampered_token_refused(world, client):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    client.force_login(world.user)
    head, _, signature = link.token.rpartition(":")
    _refused(client, f"{head}:{'A' * len(signature)}", "tampered")
    _refused(client, "not-a-token", "tampered")


def test_expired_token_refused_with_a_moved_clock(world, client, monkeypatch):
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    client.force_login(world.user)
    issued_at = links._now()
    monkeypatch.setattr(links, "_now", lambda: issued_at + 599)
    assert link_verify(link.token).file_id == world.file.pk
    monkeypatch.setattr(links, "_now", lambda: issued_at + 601)
    _refused(client, link.token, "expired")


def test_link_seconds_setting(world, settings):
    settings.PORTAL_LINK_SECONDS = 30
    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    assert (link.expires_at - timezone.now()).total_seconds() == pytest.approx(30, abs=3)


def test_issue_refused_when_restricted_or_not_named(world):
    Grant.objects.filter(pk=world.grant.pk).update(restricted=True)
    world.grant.refresh_from_db()
    with pytest.raises(LinkRefused) as error:
        link_issue(grant=world.grant, file=world.file, user=world.user)
    assert error.value.code == "restricted"
    Grant.objects.filter(pk=world.grant.pk).update(restricted=False)
    world.grant.refresh_from_db()
    with pytest.raises(LinkRefused):
        link_issue(grant=world.grant, file=world.file, user=UserFactory())
    assert AuditEvent.objects.filter(action="access.link_issued").count() == 0
    assert AuditEvent.objects.filter(action="access.link_refused").count() == 2


def test_rate_limit(world, settings):
    settings.PORTAL_LINK_RATE = 3
    for _ in range(3):
        link_issue(grant=world.grant, file=world.file, user=world.user)
    with pytest.raises(LinkRateLimited) as error:
        link_issue(grant=world.grant, file=world.file, user=world.user)
    assert "at most 3" in error.value.message


def test_api_token_user_may_download(world, client):
    from knox.models import AuthToken

    link = link_issue(grant=world.grant, file=world.file, user=world.user)
    raw = AuthToken.objects.create(world.user)[1]
    response = client.get(_url(link.token), HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT
    other = AuthToken.objects.create(world.other)[1]
    response = client.get(_url(link.token), HTTP_AUTHORIZATION=f"Token {other}")
    assert response.status_code == 403

