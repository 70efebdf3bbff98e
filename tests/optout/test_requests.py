"""Opt-out requests: pseudonym only, propagation to releases and grant holders, tracking to closure."""

from __future__ import annotations

import io
import json
import logging
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.lib.pseudonym import subject_pseudonym
from portal.optout import services
from portal.optout.models import DeletionConfirmation, OptOutRequest
from portal.optout.selectors import excluded_pseudonyms
from portal.optout.workflow import OptOutRefused, TransitionNotAllowed
from tests.factories import SocietyFactory, UserFactory
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release
from tests.factories.ethics import permitted_protocol

pytestmark = pytest.mark.django_db

RAW_ID = "PT-0098765432"
RAW_FORMS = ("PT-0098765432", "PT0098765432", "0098765432")
INSTITUTION = "1310001234"
R = OptOutRequest.Status


def pseudonym_of(raw: str = RAW_ID) -> str:
    return subject_pseudonym(institution_code=INSTITUTION, patient_id=raw)


def record(society, by, **overrides):  # type: ignore[no-untyped-def]
    arguments = {
        "society": society, "patient_id": RAW_ID, "institution_code": INSTITUTION,
        "received_at": timezone.now() - timedelta(hours=2), "channel": "counter", "requester_type": "subject",
        "identity_verification": "診察券と運転免許証で確認", "all_protocols": True, "protocols": [],
        "modalities": [], "extent": "delete_provided", "action_taken": "delete", "reason_not_stopped": "",
        "by": by,
    }
    return services.optout_request_record(**(arguments | overrides))


@pytest.fixture
def world(society):  # type: ignore[no-untyped-def]
    """Two societies' datasets holding the subject, a release without them, and grants on them."""
    subject = pseudonym_of()
    stranger = pseudonym_of("PT-1111")
    endoscopy = DatasetFactory(society=society, slug="jsp-endo", modality="endoscopy")
    other_society = SocietyFactory(slug="jrs")
    ct = DatasetFactory(society=other_society, slug="jrs-ct", modality="ct")
    endo_release = make_release(endoscopy, [FileSpec(subject, date(2024, 5, 1)), FileSpec(subject, date(2024, 5, 1)),
                                            FileSpec(stranger, date(2024, 6, 1))])
    ct_release = make_release(ct, [FileSpec(subject, date(2024, 5, 2))])
    clean_release = make_release(DatasetFactory(society=society, slug="jsp-clean"), [FileSpec(stranger)])
    holder_a = UserFactory(email="holder-a@company.example.jp")
    holder_b = UserFactory(email="holder-b@univ.example.ac.jp")
    bystander = UserFactory(email="bystander@company.example.jp")
    grant_both = active_grant([holder_a, holder_b], [endo_release, ct_release])
    grant_clean = active_grant([bystander], [clean_release])
    expired = active_grant([bystander], [endo_release], days=-1)
    return {
        "subject": subject, "endoscopy": endoscopy, "ct": ct, "endo_release": endo_release,
        "ct_release": ct_release, "clean_release": clean_release, "holder_a": holder_a, "holder_b": holder_b,
        "bystander": bystander, "grant_both": grant_both, "grant_clean": grant_clean, "expired": expired,
    }


def _state(request: OptOutRequest):  # type: ignore[no-untyped-def]
    request.refresh_from_db()
    return (
        request.status, request.requester_notified_at, request.closed_at,
        list(request.deletions.order_by("id").values_list("status", "confirmed_at", "confirmation_note")),
        AuditEvent.objects.count(),
    )


# --- Recording --------------------------------------------------------------------------------


def test_record_stores_the_pseudonym_and_lists_releases_holding_the_subject(society, society_admin, world):
    request = record(society, society_admin, extent="future_only", action_taken="stop_use")

    year = timezone.localdate().year
    assert request.reference == f"REQ-{year}-0001"
    assert request.subject_pseudonym == world["subject"]
    assert request.status == R.OPEN
    assert sorted(str(r) for r in request.affected_releases.all()) == ["jrs-ct v1", "jsp-endo v1"]
    assert request.deletions.count() == 0  # future use only: nobody is asked to delete
    assert mail.outbox == []


def test_record_numbers_requests_across_societies(society, society_admin, world):
    first = record(society, society_admin)
    second = record(society, society_admin, patient_id="PT-2")

    year = timezone.localdate().year
    assert (first.reference, second.reference) == (f"REQ-{year}-0001", f"REQ-{year}-0002")


def test_record_delete_provided_asks_every_active_grant_holder(
    society, society_admin, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = record(society, society_admin)

    rows = sorted(
        (c.holder.email, str(c.release), c.grant.reference, c.file_count, c.status)
        for c in request.deletions.select_related("holder", "release__dataset", "grant")
    )
    grant = world["grant_both"].reference
    assert rows == [
        ("holder-a@company.example.jp", "jrs-ct v1", grant, 1, "pending"),
        ("holder-a@company.example.jp", "jsp-endo v1", grant, 2, "pending"),
        ("holder-b@univ.example.ac.jp", "jrs-ct v1", grant, 1, "pending"),
        ("holder-b@univ.example.ac.jp", "jsp-endo v1", grant, 2, "pending"),
    ]
    assert request.status == R.AWAITING_DELETION
    assert sorted(m.to[0] for m in mail.outbox) == ["holder-a@company.example.jp", "holder-b@univ.example.ac.jp"]
    message = mail.outbox[0]
    assert request.reference in message.subject
    assert "jrs-ct v1" in message.body and "jsp-endo v1" in message.body
    assert reverse("optout:deletions") in message.body
    assert world["subject"] not in message.body  # the pseudonym is shown in the portal only


def test_record_respects_protocol_and_modality_scope(society, society_admin, world):
    request = record(society, society_admin, modalities=["ct"])

    assert [str(r) for r in request.affected_releases.all()] == ["jrs-ct v1"]
    assert {str(c.release) for c in request.deletions.all()} == {"jrs-ct v1"}

    only_endo = record(society, society_admin, all_protocols=False, protocols=[world["endoscopy"].protocol],
                       extent="future_only")
    assert [str(r) for r in only_endo.affected_releases.all()] == ["jsp-endo v1"]


def test_record_refused_for_outsiders_and_members_of_other_societies(society, outsider, applicant, world):
    other_admin = UserFactory()
    from tests.factories import SocietyMembershipFactory

    SocietyMembershipFactory(society=SocietyFactory(), user=other_admin, role="admin")
    events = AuditEvent.objects.count()

    for user in (outsider, applicant, other_admin):
        with pytest.raises(PermissionDenied):
            record(society, user)

    assert OptOutRequest.objects.count() == 0
    assert DeletionConfirmation.objects.count() == 0
    assert AuditEvent.objects.count() == events
    assert mail.outbox == []


def test_record_steward_and_operator_may_record(society, steward, world):
    operator = UserFactory(is_staff=True)

    assert record(society, steward, extent="future_only").handled_by == steward
    assert record(society, operator, extent="future_only").handled_by == operator


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"patient_id": " "}, None),
        ({"institution_code": ""}, None),
        ({"all_protocols": False, "protocols": []}, "protocols"),
        ({"modalities": ["ct", "smell"]}, "modalities"),
        ({"action_taken": "cannot_stop", "reason_not_stopped": ""}, "reason_not_stopped"),
        ({"identity_verification": ""}, "identity_verification"),
        ({"channel": "pigeon"}, "channel"),
        ({"received_at": timezone.now() + timedelta(days=1)}, "received_at"),
    ],
)
def test_record_bad_input_is_refused_and_never_repeats_the_raw_id(society, society_admin, world, overrides, field):
    with pytest.raises(ValidationError) as error:
        record(society, society_admin, **overrides)

    if field:
        assert field in error.value.message_dict
    assert not any(raw in " ".join(error.value.messages) for raw in RAW_FORMS)
    assert OptOutRequest.objects.count() == 0


# --- The raw patient ID is nowhere ------------------------------------------------------------


def _form_data(society, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "society": society.pk, "institution_code": INSTITUTION, "patient_id": RAW_ID,
        "received_at": (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "channel": "phone", "requester_type": "proxy", "identity_verification": "電話で生年月日を照合",
        "all_protocols": "on", "extent": "delete_provided", "action_taken": "delete",
    }
    return data | overrides


def test_raw_patient_id_absent_from_database_logs_audit_mail_and_pages(
    client, society, society_admin, world, caplog, django_capture_on_commit_callbacks
):
    client.force_login(society_admin)
    caplog.set_level(logging.DEBUG)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("optout:request_create"), _form_data(society))

    request = OptOutRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("optout:request_detail", args=[request.reference])
    assert request.subject_pseudonym == world["subject"]
    page = client.get(response["Location"]).content.decode()
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    audit = json.dumps(list(AuditEvent.objects.values("details", "target_repr")), ensure_ascii=False)
    mails = " ".join(m.subject + m.body for m in mail.outbox)
    session = json.dumps(dict(client.session), default=str)
    assert len(mail.outbox) == 2
    for raw in RAW_FORMS:
        assert raw not in dump.getvalue()
        assert raw not in caplog.text
        assert raw not in audit
        assert raw not in mails
        assert raw not in page
        assert raw not in session
    assert world["subject"] in dump.getvalue()  # the dump did include the request


def test_record_form_error_clears_the_raw_id(client, society, society_admin, world, caplog):
    client.force_login(society_admin)
    caplog.set_level(logging.DEBUG)

    response = client.post(reverse("optout:request_create"), _form_data(society, identity_verification=""))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="patient_id"' in html
    for raw in RAW_FORMS:
        assert raw not in html
        assert raw not in caplog.text
    assert OptOutRequest.objects.count() == 0


def test_service_error_after_hashing_clears_the_raw_id(client, society, society_admin, world):
    client.force_login(society_admin)

    response = client.post(reverse("optout:request_create"), _form_data(society, all_protocols=""))

    html = response.content.decode()
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["protocols"]
    assert RAW_ID not in html
    assert OptOutRequest.objects.count() == 0


# --- Confirmations tracked to closure ---------------------------------------------------------


def test_holders_see_and_confirm_their_deletions_in_the_portal(client, society, society_admin, world):
    request = record(society, society_admin)
    holder = world["holder_a"]
    client.force_login(holder)

    listing = client.get(reverse("optout:deletions"))

    mine = list(DeletionConfirmation.objects.filter(holder=holder).order_by("id"))
    assert listing.status_code == 200
    assert [c.pk for c in listing.context["pending"]] == [c.pk for c in mine]
    assert request.reference in listing.content.decode()
    page = client.get(reverse("optout:deletion_confirm", args=[mine[0].pk]))
    assert page.status_code == 200
    assert world["subject"] in page.content.decode()

    response = client.post(reverse("optout:deletion_confirm", args=[mine[0].pk]),
                           {"note": "社内サーバとバックアップから削除 2026-11-28"})

    assert response.status_code == 302
    mine[0].refresh_from_db()
    assert (mine[0].status, mine[0].confirmation_note) == ("confirmed", "社内サーバとバックアップから削除 2026-11-28")
    assert mine[0].confirmed_at is not None


def test_other_users_cannot_see_or_confirm_someone_elses_deletion(client, society, society_admin, world):
    request = record(society, society_admin)
    theirs = request.deletions.filter(holder=world["holder_a"]).first()
    client.force_login(world["holder_b"])
    before = _state(request)

    assert client.get(reverse("optout:deletion_confirm", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("optout:deletion_confirm", args=[theirs.pk]), {"note": "x"}).status_code == 404
    with pytest.raises(PermissionDenied):
        services.optout_deletion_confirm(confirmation=theirs, note="x", by=world["holder_b"])

    assert _state(request) == before


def test_close_refused_while_confirmations_are_pending_then_allowed(society, society_admin, world):
    request = record(society, society_admin)
    services.optout_request_notify_requester(request=request, notified_at=timezone.now(), by=society_admin)
    before = _state(request)

    with pytest.raises(OptOutRefused) as refusal:
        services.optout_request_close(request=request, by=society_admin)

    assert str(refusal.value) == "4 data holders have still to confirm deletion; the request cannot be closed yet."
    assert _state(request) == before

    for confirmation in request.deletions.all():
        services.optout_deletion_confirm(confirmation=confirmation, note="削除済み", by=confirmation.holder)
    request.refresh_from_db()
    assert request.status == R.OPEN

    services.optout_request_close(request=request, by=society_admin)
    request.refresh_from_db()
    assert request.status == R.CLOSED
    assert request.closed_at is not None
    assert AuditEvent.objects.filter(action="optout.deletion_confirmed").count() == 4
    assert AuditEvent.objects.filter(action="optout.request_closed").count() == 1


def test_close_refused_until_the_requester_was_notified(society, society_admin, world):
    request = record(society, society_admin, extent="future_only")
    before = _state(request)

    with pytest.raises(OptOutRefused):
        services.optout_request_close(request=request, by=society_admin)
    assert _state(request) == before

    services.optout_request_notify_requester(request=request, notified_at=timezone.now(), by=society_admin)
    services.optout_request_close(request=request, by=society_admin)
    request.refresh_from_db()
    assert request.status == R.CLOSED


def test_notify_requester_validates_the_date_and_the_state(society, society_admin, steward, outsider, world):
    request = record(society, society_admin, extent="future_only")
    before = _state(request)

    with pytest.raises(ValidationError):
        services.optout_request_notify_requester(
            request=request, notified_at=timezone.now() + timedelta(days=1), by=society_admin)
    with pytest.raises(ValidationError):
        services.optout_request_notify_requester(
            request=request, notified_at=request.received_at - timedelta(days=1), by=society_admin)
    with pytest.raises(PermissionDenied):
        services.optout_request_notify_requester(request=request, notified_at=timezone.now(), by=outsider)
    assert _state(request) == before

    services.optout_request_notify_requester(request=request, notified_at=timezone.now(), by=steward)
    services.optout_request_close(request=request, by=steward)
    closed = _state(request)
    with pytest.raises(OptOutRefused):
        services.optout_request_notify_requester(request=request, notified_at=timezone.now(), by=steward)
    with pytest.raises(TransitionNotAllowed):
        services.optout_request_close(request=request, by=steward)
    assert _state(request) == closed


def test_confirming_twice_is_refused(society, society_admin, world):
    request = record(society, society_admin)
    confirmation = request.deletions.first()
    services.optout_deletion_confirm(confirmation=confirmation, note="削除", by=confirmation.holder)
    before = _state(request)

    with pytest.raises(OptOutRefused):
        services.optout_deletion_confirm(confirmation=confirmation, note="再度", by=confirmation.holder)

    assert _state(request) == before


# --- Exclusion from future releases -----------------------------------------------------------


def test_excluded_pseudonyms_scope_rules(society, society_admin, world):
    endoscopy, ct = world["endoscopy"], world["ct"]
    other_protocol = permitted_protocol()
    p = {name: pseudonym_of(name) for name in ("all", "endo-only", "ct-mod", "other-proto", "closed")}
    record(society, society_admin, patient_id="all", extent="future_only")
    record(society, society_admin, patient_id="endo-only", all_protocols=False, protocols=[endoscopy.protocol],
           extent="future_only")
    record(society, society_admin, patient_id="ct-mod", modalities=["ct"], extent="future_only")
    record(society, society_admin, patient_id="other-proto", all_protocols=False, protocols=[other_protocol],
           extent="future_only")
    closed = record(society, society_admin, patient_id="closed", modalities=["endoscopy", "ct"],
                    extent="future_only")
    services.optout_request_notify_requester(request=closed, notified_at=timezone.now(), by=society_admin)
    services.optout_request_close(request=closed, by=society_admin)

    assert excluded_pseudonyms(dataset=endoscopy) == {p["all"], p["endo-only"], p["closed"]}
    assert excluded_pseudonyms(dataset=ct) == {p["all"], p["ct-mod"], p["closed"]}
    # Platform-wide: recorded at the pathology society, applied to the radiology society's dataset.
    assert ct.society != society
    fundus = DatasetFactory(protocol=other_protocol, modality="fundus")
    assert excluded_pseudonyms(dataset=fundus) == {p["all"], p["other-proto"]}


def test_excluded_pseudonyms_is_empty_without_requests(world):
    assert excluded_pseudonyms(dataset=world["endoscopy"]) == set()


def test_excluded_pseudonyms_runs_one_query(society, society_admin, world, django_assert_num_queries):
    for n in range(5):
        record(society, society_admin, patient_id=f"P{n}", extent="future_only", modalities=["endoscopy"])

    with django_assert_num_queries(1):
        result = excluded_pseudonyms(dataset=world["endoscopy"])
    assert len(result) == 5


def test_request_record_removes_the_subject_from_the_linkage_index(world, society_admin):
    from portal.linkage.models import LinkageRecord
    from portal.linkage.services import linkage_index_release

    linkage_index_release(release=world["endo_release"])
    linkage_index_release(release=world["ct_release"])
    before = set(LinkageRecord.objects.values_list("subject_pseudonym", "dataset__slug"))
    assert (world["subject"], "jsp-endo") in before and (world["subject"], "jrs-ct") in before

    request = record(world["endoscopy"].society, society_admin, all_protocols=True, modalities=["ct"])

    after = set(LinkageRecord.objects.values_list("subject_pseudonym", "dataset__slug"))
    # Only the CT dataset is in the request's scope: the subject leaves its index, nowhere else.
    assert after == before - {(world["subject"], "jrs-ct")}
    event = AuditEvent.objects.filter(action="optout.request_recorded", target_id=str(request.pk)).get()
    assert event.details["linkage_records_removed"] == 1
