"""Data-access applications through the API alone, with tokens: apply → screen → vote → decide →
sign → countersign → grant, and every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.access.models import AccessRequest, CommitteeVote, Grant, RequestStatus, SocietyReview
from portal.access.services import requests as svc
from portal.audit.models import AuditEvent
from tests.access.test_requests_services import complete_answers, draft, make_world
from tests.factories import give_totp
from tests.support.api_caller import Caller

API = "/api/v1/access/requests/"


# The a6 answers about the principal investigator and the head of the institution.
A6 = {"pi_title": "主任研究員", "pi_researcher_number_kind": "erad", "pi_researcher_number": "12345678",
      "pi_research_record": "内視鏡AIに関する論文3報", "head_name": "代表 花子", "head_title": "代表取締役",
      "head_email": "ceo@corp.example.jp", "security_level": "type_1"}


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    world = make_world()
    for user in (world.applicant, world.signatory, world.colleague):
        give_totp(user)
    # The application form offers the applicant's own protocols only.
    world.protocol.principal_investigator = world.applicant
    world.protocol.save(update_fields=["principal_investigator"])
    return world


def submitted(world) -> AccessRequest:  # type: ignore[no-untyped-def]
    return svc.access_request_submit(access_request=draft(world, **A6), by=world.applicant)


def in_committee(world) -> AccessRequest:  # type: ignore[no-untyped-def]
    request = submitted(world)
    svc.access_request_screen(access_request=request, society=world.a.society, by=world.a.steward)
    request.refresh_from_db()
    return request


def _ok(response, code=200):  # type: ignore[no-untyped-def]
    assert response.status_code == code, response.content
    return response.json()


def test_access_chain_apply_screen_vote_decide_sign_countersign_grant_through_api_alone(client, world):
    applicant, a = Caller(client, world.applicant), world.a
    today = timezone.localdate()

    created = _ok(applicant.post(API, {"organization": world.organization.pk,
                                       "title": "内視鏡画像による病変検出AIの開発"}), 201)
    pk = created["id"]
    assert created["status"] == "draft"
    _ok(applicant.patch(f"{API}{pk}/", {
        "signatory_email": world.signatory.email, "summary": "概要", "purpose": "academic",
        "expected_outputs": ["paper", "ai_model"], "legal_basis": "consent",
        "ethics_protocol": world.protocol.pk, "processing_level": "pseudonymised", "environment": "on_premise",
        "period_start": today.isoformat(), "period_end": (today + timedelta(days=365)).isoformat(),
        "releases": [a.release.pk],
        "named_users": [
            {"email": world.applicant.email, "role": "principal", "ethics_training": True,
             "ethics_training_date": today.isoformat()},
            {"email": world.colleague.email, "role": "co_investigator"},
        ],
        "security_answers": complete_answers(),
        **A6,
    }))
    assert _ok(applicant.post(f"{API}{pk}/submit/"))["status"] == "submitted"

    society = f"{API}{pk}/societies/{a.society.pk}/"
    assert _ok(Caller(client, a.steward).post(society + "screen/", {"comment": "確認済み"}))["status"] \
        == "committee_review"
    for member in a.members[:2]:
        _ok(Caller(client, member).post(society + "vote/", {"vote": "approve"}))
    decided = _ok(Caller(client, a.members[0]).post(society + "decide/", {"outcome": "approved"}))
    assert decided["status"] == "approved"
    signed = _ok(Caller(client, world.signatory).post(f"{API}{pk}/sign/", {
        "signatory_name": "代表 花子", "signatory_title": "代表取締役", "agree": True}))
    assert signed["status"] == "signed"
    granted = _ok(Caller(client, a.admin).post(society + "countersign/", {
        "countersigner_name": "学会 次郎", "countersigner_title": "理事長"}))

    assert granted["status"] == "granted"
    grant = Grant.objects.get(access_request_id=pk)
    assert grant.society == a.society
    assert set(grant.users.values_list("email", flat=True)) == {world.applicant.email, world.colleague.email}
    assert CommitteeVote.objects.filter(review__access_request_id=pk).count() == 2
    grants = _ok(applicant.get("/api/v1/access/grants/"))
    assert [g["reference"] for g in grants["results"]] == [grant.reference]


def test_access_api_outsider_gets_404_and_nothing_changes(client, world, outsider):
    give_totp(outsider)
    request = submitted(world)

    response = Caller(client, outsider).post(f"{API}{request.pk}/societies/{world.a.society.pk}/screen/")

    assert response.status_code == 404
    assert SocietyReview.objects.get(access_request=request, society=world.a.society).status \
        == SocietyReview.Status.SCREENING


def test_access_api_steward_of_other_society_gets_403_and_nothing_changes(client, world):
    request = submitted(world)

    # The steward of society b sees nothing of an application that does not request b's data.
    response = Caller(client, world.b.steward).post(f"{API}{request.pk}/societies/{world.a.society.pk}/screen/")
    by_applicant = Caller(client, world.applicant).post(
        f"{API}{request.pk}/societies/{world.a.society.pk}/screen/")

    assert response.status_code == 404
    assert by_applicant.status_code == 403
    assert SocietyReview.objects.get(access_request=request).status == SocietyReview.Status.SCREENING


def test_access_api_wrong_state_is_409_with_translated_message_and_nothing_changes(client, world):
    request = in_committee(world)
    events = AuditEvent.objects.count()

    response = Caller(client, world.a.steward).post(f"{API}{request.pk}/societies/{world.a.society.pk}/screen/")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "審査" in response.json()["detail"]
    request.refresh_from_db()
    assert request.status == RequestStatus.COMMITTEE_REVIEW
    assert AuditEvent.objects.count() == events


def test_access_api_decide_without_quorum_is_refused_and_nothing_changes(client, world):
    request = in_committee(world)

    response = Caller(client, world.a.members[0]).post(
        f"{API}{request.pk}/societies/{world.a.society.pk}/decide/", {"outcome": "approved"})

    assert response.status_code == 409
    assert SocietyReview.objects.get(access_request=request).status == SocietyReview.Status.COMMITTEE


def test_access_api_patch_by_signatory_is_403_and_nothing_changes(client, world):
    request = submitted(world)
    title = request.title

    response = Caller(client, world.signatory).patch(f"{API}{request.pk}/", {"title": "別の題名"})

    assert response.status_code == 403
    assert AccessRequest.objects.get(pk=request.pk).title == title


def test_access_api_bad_vote_is_400_and_nothing_changes(client, world):
    request = in_committee(world)

    response = Caller(client, world.a.members[0]).post(
        f"{API}{request.pk}/societies/{world.a.society.pk}/vote/", {"vote": "maybe"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"vote"}
    assert not CommitteeVote.objects.filter(review__access_request=request).exists()


def test_access_api_steward_returns_applicant_comments_and_withdraws(client, world):
    request = submitted(world)
    society = f"{API}{request.pk}/societies/{world.a.society.pk}/"

    returned = _ok(Caller(client, world.a.steward).post(society + "return/", {"reason": "目的を具体的に"}))
    assert returned["status"] == "returned"
    commented = _ok(Caller(client, world.applicant).post(f"{API}{request.pk}/comments/",
                                                         {"body": "修正しました", "audience": "applicant"}))
    assert [c["body"] for c in commented["comments"]][-1] == "修正しました"
    withdrawn = _ok(Caller(client, world.applicant).post(f"{API}{request.pk}/withdraw/", {"reason": "計画変更"}))

    assert withdrawn["status"] == "withdrawn"


def test_access_api_sign_by_applicant_who_is_not_signatory_is_403_and_nothing_changes(client, world):
    request = in_committee(world)

    response = Caller(client, world.applicant).post(f"{API}{request.pk}/sign/", {
        "signatory_name": "申請 太郎", "signatory_title": "部長", "agree": True})

    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == RequestStatus.COMMITTEE_REVIEW
    assert not request.agreements.exists()
