"""The ethics review through the API alone, with tokens: the pages' permission check, the same
services, refusals that change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation
from django.utils.translation import gettext

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.models import Decision, Protocol, ProtocolStatus, Review, Vote
from tests.ethics.test_services import (
    PDF,
    _approve,
    _attend_all,
    _complete_items,
    _draft,
    _to_review,
)
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.ethics import EthicsCommitteeFactory, full_committee
from tests.support.api_caller import Caller

API = "/api/v1/ethics/protocols/"
TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    outsider = UserFactory(email="outsider@example.com")
    for user in (applicant, head, outsider):
        give_totp(user)
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university, "outsider": outsider}


def _callers(client, setting):  # type: ignore[no-untyped-def]
    people = {name: m.user for name, m in setting["members"].items()}
    people |= {"applicant": setting["applicant"], "head": setting["head"], "outsider": setting["outsider"]}
    return {name: Caller(client, user) for name, user in people.items()}


def _ok(response, code=200):  # type: ignore[no-untyped-def]
    assert response.status_code == code, response.content
    return response.json()


def test_ethics_chain_submit_accept_vote_decide_permit_through_api_alone(client, setting):
    c = _callers(client, setting)

    created = _ok(c["applicant"].post(API, {"committee": "irb", "institution": setting["university"].pk,
                                            "title": TITLE}), 201)
    pk = created["id"]
    assert created == {"id": pk, "number": None, "status": "draft", "latest_version": 1}
    _ok(c["applicant"].patch(f"{API}{pk}/draft/", {
        "fields": {
            "consent_procedure": "opt_out",
            "justification_minimal_risk": "既存の画像のみを用い、侵襲はない。",
            "justification_no_disadvantage": "診療に影響しない。",
            "justification_impracticable": "数万人から個別に同意を得ることは困難である。",
            "justification_social_importance": "胃がんの早期発見に資する。",
        },
        "items": _complete_items(),
        "organization_entries": [{"institution_name": "研究大学", "institution_role": "research_institution",
                                  "person_name": "研究 太郎", "person_role": "site_pi",
                                  "user": "pi@example.ac.jp"}],
    }))
    attached = c["applicant"].post(
        f"{API}{pk}/attachments/",
        {"kind": "opt_out_notice", "file": SimpleUploadedFile("optout.pdf", PDF, content_type="application/pdf")},
        format="multipart")
    assert attached.status_code == 201, attached.content
    submitted = _ok(c["applicant"].post(f"{API}{pk}/submit/"))
    assert submitted["status"] == "submitted"
    assert submitted["number"]

    assert _ok(c["secretariat"].post(f"{API}{pk}/review/open/", {"mode": "full_board"}))["status"] == "under_review"
    voters = [m for name, m in setting["members"].items() if name != "secretariat"]
    _ok(c["secretariat"].post(f"{API}{pk}/review/attendance/", {"members": [m.pk for m in voters]}))
    _ok(c["law"].post(f"{API}{pk}/review/comments/",
                      {"item_key": "title", "body": "題名を具体的に", "for_applicant": True}))
    for name in ("chair", "science", "law", "lay", "external"):
        _ok(c[name].post(f"{API}{pk}/review/vote/", {"choice": "approve"}))
    until = (timezone.localdate() + timedelta(days=365)).isoformat()
    decided = _ok(c["chair"].post(f"{API}{pk}/review/decision/", {
        "outcome": "approved", "method": "unanimous", "reasons": "科学的・倫理的に妥当である。",
        "approved_until": until}))
    assert decided["status"] == "approved"
    permitted = _ok(c["head"].post(f"{API}{pk}/permission/", {"permitted": True}))

    assert permitted["status"] == "active"
    protocol = Protocol.objects.get(pk=pk)
    assert protocol.approved_until.isoformat() == until
    review = Review.objects.get(version__protocol=protocol)
    assert review.votes.filter(choice=Vote.Choice.APPROVE).count() == 5
    assert review.decision.outcome == Decision.Outcome.APPROVED
    actions = set(AuditEvent.objects.filter(target_id=str(pk), action__startswith="ethics.").values_list("action", flat=True))
    assert {"ethics.protocol_created", "ethics.protocol_submitted", "ethics.review_opened",
            "ethics.vote_cast", "ethics.decision_recorded", "ethics.head_permitted"} <= actions, actions


def _submitted(setting) -> Protocol:  # type: ignore[no-untyped-def]
    protocol = _draft(setting)
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    return protocol


def test_ethics_api_outsider_gets_404_and_nothing_changes(client, setting):
    protocol = _submitted(setting)
    c = _callers(client, setting)

    response = c["outsider"].post(f"{API}{protocol.pk}/review/open/", {"mode": "full_board"})

    assert response.status_code == 404
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    assert not Review.objects.filter(version__protocol=protocol).exists()


def test_ethics_api_member_without_role_gets_403_and_nothing_changes(client, setting):
    protocol = _submitted(setting)
    c = _callers(client, setting)

    response = c["law"].post(f"{API}{protocol.pk}/review/open/", {"mode": "full_board"})
    by_applicant = c["applicant"].post(f"{API}{protocol.pk}/permission/", {"permitted": True})

    assert response.status_code == 403
    assert by_applicant.status_code == 403
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    assert not Review.objects.filter(version__protocol=protocol).exists()


def test_ethics_api_wrong_state_is_409_with_translated_message_and_nothing_changes(client, setting):
    protocol = _submitted(setting)
    c = _callers(client, setting)
    events = AuditEvent.objects.count()

    response = c["head"].post(f"{API}{protocol.pk}/permission/", {"permitted": True})

    assert response.status_code == 409
    with translation.override("ja"):
        message = gettext("The head cannot permit research that the committee has not approved.")
    assert message != "The head cannot permit research that the committee has not approved."  # translated
    assert response.json() == {"detail": message, "code": "conflict"}
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    assert AuditEvent.objects.count() == events


def test_ethics_api_bad_input_is_400_by_field_and_nothing_changes(client, setting):
    protocol = _submitted(setting)
    c = _callers(client, setting)

    response = c["secretariat"].post(f"{API}{protocol.pk}/review/open/", {"mode": "telepathy"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"mode"}
    assert not Review.objects.filter(version__protocol=protocol).exists()


def test_ethics_api_submit_incomplete_is_400_naming_missing_items(client, setting):
    c = _callers(client, setting)
    pk = _ok(c["applicant"].post(API, {"committee": "irb", "institution": setting["university"].pk,
                                       "title": TITLE}), 201)["id"]

    response = c["applicant"].post(f"{API}{pk}/submit/")

    assert response.status_code == 400
    assert len(response.json()["errors"]["non_field_errors"]) > 20
    assert Protocol.objects.get(pk=pk).status == ProtocolStatus.DRAFT


def _active(setting) -> Protocol:  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


def test_ethics_running_protocol_amendment_reports_suspension_and_completion_through_api(client, setting):
    protocol = _active(setting)
    c = _callers(client, setting)
    url = f"{API}{protocol.pk}/"

    opened = _ok(c["applicant"].post(url + "amendment/", {"kind": "minor_amendment", "summary": "連絡先の変更"}))
    assert opened["latest_version"] == 2
    assert _ok(c["applicant"].post(url + "submit/"))["status"] == "amendment_review"
    assert _ok(c["secretariat"].post(url + "acknowledge/"))["status"] == "active"
    _ok(c["applicant"].post(url + "periodic-reports/", {
        "period_end": timezone.localdate().isoformat(), "subjects_enrolled": 120, "body": "順調に進捗"}))
    report = protocol.periodic_reports.get()
    _ok(c["secretariat"].post(url + f"periodic-reports/{report.pk}/acknowledge/"))
    assert _ok(c["chair"].post(url + "suspend/", {"reason": "重大な逸脱の調査"}))["status"] == "suspended"
    assert _ok(c["head"].post(url + "resume/"))["status"] == "active"
    completed = _ok(c["applicant"].post(url + "completion/", {"report": "目標症例数に達し終了した。"}))

    assert completed["status"] == "completed"
    report.refresh_from_db()
    assert report.acknowledged_at is not None


def test_ethics_api_suspend_by_member_is_403_and_nothing_changes(client, setting):
    protocol = _active(setting)
    c = _callers(client, setting)

    response = c["law"].post(f"{API}{protocol.pk}/suspend/", {"reason": "理由"})

    assert response.status_code == 403
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.ACTIVE


def test_ethics_api_vote_by_outsider_is_404_and_by_applicant_403_and_nothing_changes(client, setting):
    protocol = _active(setting)
    c = _callers(client, setting)
    votes = Vote.objects.count()

    assert c["outsider"].post(f"{API}{protocol.pk}/review/vote/", {"choice": "approve"}).status_code == 404
    assert c["applicant"].post(f"{API}{protocol.pk}/review/vote/", {"choice": "approve"}).status_code == 403
    assert Vote.objects.count() == votes


def test_ethics_review_record_conflicts_explanation_and_notified_day_through_api(client, setting):
    protocol, review = _to_review(setting)
    c = _callers(client, setting)
    url = f"{API}{protocol.pk}/review/"

    _ok(c["law"].post(url + "conflict/", {"has_conflict": False}))
    _ok(c["secretariat"].post(url + "explanation/", {"explanation": "研究者より手順の説明があった。"}))
    refused = c["law"].post(url + "explanation/", {"explanation": "委員の書き込み"})
    too_early = c["secretariat"].post(url + "notified/", {"on": timezone.localdate().isoformat()})
    _attend_all(setting, review)
    _approve(setting, review)
    _ok(c["secretariat"].post(url + "notified/", {"on": timezone.localdate().isoformat()}))

    assert refused.status_code == 403
    assert too_early.status_code == 409
    review.refresh_from_db()
    assert review.pi_explanation == "研究者より手順の説明があった。"
    assert list(review.conflict_declarations.values_list("member__user__email", "has_conflict")) == [
        ("law@irb.example.jp", False)]
    assert review.decision.notified_to_head_on == timezone.localdate()


def test_ethics_noncompliance_reported_by_head_and_opinion_by_chair_through_api(client, setting):
    protocol = _active(setting)
    c = _callers(client, setting)
    url = f"{API}{protocol.pk}/noncompliance/"

    refused = c["law"].post(url, {"body": "同意のない画像の提供"})
    _ok(c["head"].post(url, {"body": "同意撤回後の画像が提供されていた。提供を停止した。"}))
    report = protocol.noncompliance_reports.get()
    by_member = c["law"].post(f"{url}{report.pk}/opinion/", {"opinion": "再発防止策を求める"})
    _ok(c["chair"].post(f"{url}{report.pk}/opinion/", {"opinion": "再発防止策を求める"}))

    assert refused.status_code == 403
    assert by_member.status_code == 403
    report.refresh_from_db()
    assert report.opinion == "再発防止策を求める"
