"""Opt-out requests and deletions through the API: recorded by a society admin as on the page, the
raw patient ID never kept, holders confirming, closing; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.optout.models import DeletionConfirmation, OptOutNotice, OptOutRequest
from tests.factories.datasets import DatasetFactory
from tests.optout.test_notices import complete_fields
from tests.optout.test_requests import INSTITUTION, RAW_ID, pseudonym_of, world  # noqa: F401
from tests.support.api_caller import Caller

pytestmark = pytest.mark.django_db

API = "/api/v1/optout/requests/"


def _body(society, **overrides):  # type: ignore[no-untyped-def]
    return {
        "society": society.slug, "institution_code": INSTITUTION, "patient_id": RAW_ID,
        "received_at": (timezone.now() - timedelta(hours=1)).isoformat(), "channel": "phone",
        "requester_type": "proxy", "identity_verification": "電話で生年月日を照合", "all_protocols": True,
        "extent": "delete_provided", "action_taken": "delete",
    } | overrides


def test_request_recorded_confirmed_notified_and_closed_through_api(client, society, society_admin, world):  # noqa: F811
    admin = Caller(client, society_admin)

    response = admin.post(API, _body(society))

    assert response.status_code == 201, response.content
    body = response.json()
    assert RAW_ID not in response.content.decode()
    assert body["status"] == "awaiting_deletion"  # grant holders asked to delete
    recorded = OptOutRequest.objects.get(reference=body["reference"])
    assert recorded.subject_pseudonym == pseudonym_of()
    for confirmation in DeletionConfirmation.objects.filter(request=recorded):
        done = Caller(client, confirmation.holder).post(
            f"/api/v1/optout/deletions/{confirmation.pk}/confirm/", {"note": "サーバとバックアップから削除"})
        assert done.status_code == 200, done.content
        assert done.json()["status"] == "confirmed"
    notified = admin.post(f"{API}{recorded.reference}/notify/", {"notified_at": timezone.now().isoformat()})
    assert notified.status_code == 200, notified.content
    closed = admin.post(f"{API}{recorded.reference}/close/")

    assert closed.status_code == 200, closed.content
    assert closed.json()["status"] == "closed"


def test_request_record_by_outsider_is_403_and_records_nothing(client, society, outsider, world):  # noqa: F811
    events = AuditEvent.objects.count()

    response = Caller(client, outsider).post(API, _body(society))

    assert response.status_code == 403
    assert OptOutRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_close_before_confirmations_is_409_and_changes_nothing(client, society, society_admin, world):  # noqa: F811
    admin = Caller(client, society_admin)
    reference = admin.post(API, _body(society)).json()["reference"]
    events = AuditEvent.objects.count()

    response = admin.post(f"{API}{reference}/close/")

    assert response.status_code == 409
    assert OptOutRequest.objects.get(reference=reference).status == "awaiting_deletion"
    assert AuditEvent.objects.count() == events


def test_deletion_of_someone_else_is_404_and_changes_nothing(client, society, society_admin, world):  # noqa: F811
    reference = Caller(client, society_admin).post(API, _body(society)).json()["reference"]
    theirs = DeletionConfirmation.objects.filter(request__reference=reference, holder=world["holder_a"]).first()

    response = Caller(client, world["bystander"]).post(f"/api/v1/optout/deletions/{theirs.pk}/confirm/",
                                                       {"note": "削除"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == DeletionConfirmation.Status.PENDING


def test_notice_created_published_new_version_and_withdrawn_through_api(client, society, society_admin):
    dataset = DatasetFactory(society=society, slug="jsp-endo", status="published")
    admin = Caller(client, society_admin)
    fields = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in complete_fields().items()}

    created = admin.post("/api/v1/optout/manage/notices/", {
        "society": society.slug, "protocol": dataset.protocol.pk, "datasets": [dataset.pk], **fields})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    base = f"/api/v1/optout/manage/notices/{pk}/"
    edited = admin.patch(base + "draft/", {"title_en": "Endoscopy images"})
    assert edited.status_code == 200, edited.content
    assert admin.post(base + "publish/").json()["status"] == "published"
    assert admin.post(base + "new-version/", {"change_summary": "連絡先の変更"}).status_code == 200
    withdrawn = admin.post(base + "withdraw/", {"reason": "研究の終了"})

    assert withdrawn.status_code == 200, withdrawn.content
    assert withdrawn.json()["status"] == "withdrawn"


def test_notice_create_by_steward_is_403_and_creates_nothing(client, society, steward):
    dataset = DatasetFactory(society=society, status="published")

    response = Caller(client, steward).post("/api/v1/optout/manage/notices/", {
        "society": society.slug, "protocol": dataset.protocol.pk, "title_ja": "お知らせ"})

    assert response.status_code == 403
    assert OptOutNotice.objects.count() == 0
