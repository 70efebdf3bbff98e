"""The data-access application pages and API: who sees what, each form, and constant query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.access.models import AccessRequest, CommitteeVote, RequestStatus, SocietyReview
from portal.access.security_items import SECURITY_ITEMS
from portal.access.services import requests as svc
from tests.access.test_requests_services import (
    APPLICANT_FIELDS,
    World,
    approved,
    complete_answers,
    decide,
    draft,
    in_committee,
    make_world,
    submitted,
)
from tests.factories import OrganizationMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return make_world()


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"


def _detail(pk: int) -> str:
    return reverse("access:request_detail", args=[pk])


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


# --- who sees what -------------------------------------------------------------------------------


def test_request_list_anonymous_redirected_to_login(client, db):
    response = client.get(reverse("access:request_list"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_request_list_shows_own_applications_in_constant_queries(client, world, django_assert_num_queries):
    draft(world)
    client.force_login(world.applicant)
    client.get(reverse("access:request_list"))  # warm the session and caches
    with django_assert_num_queries(6) as first:
        response = client.get(reverse("access:request_list"))
    assert response.status_code == 200
    assert [r.pk for r in response.context["requests"]] == list(AccessRequest.objects.values_list("pk", flat=True))
    for _index in range(3):
        draft(world)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("access:request_list"))
    assert len(response.context["requests"]) == 4
    assert "Complete the application and submit it" in response.content.decode()


def test_detail_visibility_per_role(client, world):
    request = submitted(world)
    cases = [
        (world.applicant, 200, True), (world.signatory, 200, True), (world.a.steward, 200, True),
        (world.a.admin, 200, True), (world.a.members[0], 404, False), (world.b.steward, 404, False),
        (world.colleague, 404, False), (UserFactory(), 404, False),
    ]
    for user, status, security in cases:
        client.force_login(user)
        response = client.get(_detail(request.pk))
        assert response.status_code == status, user
        if status == 200:
            assert ('data-testid="security-assessment"' in response.content.decode()) is security
    svc.access_request_screen(access_request=request, society=world.a.society, by=world.a.steward)
    client.force_login(world.a.members[0])
    response = client.get(_detail(request.pk))
    assert response.status_code == 200
    assert 'data-testid="security-assessment"' not in response.content.decode()


def test_draft_hidden_from_stewards(client, world):
    request = draft(world)
    client.force_login(world.a.steward)
    assert client.get(_detail(request.pk)).status_code == 404


def test_pages_and_api_show_the_same_applications(client, world):
    first = submitted(world)
    svc.access_request_screen(access_request=first, society=world.a.society, by=world.a.steward)
    second = submitted(world, releases=[world.b.release])
    third = draft(world)
    all_ids = [first.pk, second.pk, third.pk]
    expectations = {
        world.applicant: {first.pk, second.pk, third.pk},
        world.a.steward: {first.pk},
        world.b.steward: {second.pk},
        world.a.members[1]: {first.pk},
        world.b.members[1]: set(),
        UserFactory(): set(),
    }
    for user, expected in expectations.items():
        client.force_login(user)
        pages = {pk for pk in all_ids if client.get(_detail(pk)).status_code == 200}
        listed = {row["id"] for row in client.get("/api/v1/access/requests/").json()["results"]}
        details = {pk for pk in all_ids if client.get(f"/api/v1/access/requests/{pk}/").status_code == 200}
        assert pages == listed == details == expected, user


def test_api_security_answers_only_for_applicant_and_stewards(client, world):
    request = in_committee(world)
    client.force_login(world.a.members[1])
    body = client.get(f"/api/v1/access/requests/{request.pk}/").json()
    assert body["security_answers"] is None
    assert [r["status"] for r in body["reviews"]] == ["committee"]
    client.force_login(world.a.steward)
    body = client.get(f"/api/v1/access/requests/{request.pk}/").json()
    assert len(body["security_answers"]) == len(SECURITY_ITEMS)


def test_api_list_constant_queries(client, world, django_assert_num_queries):
    submitted(world)
    client.force_login(world.a.steward)
    client.get("/api/v1/access/requests/")
    with django_assert_num_queries(8) as first:
        client.get("/api/v1/access/requests/")
    for _index in range(3):
        submitted(world)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get("/api/v1/access/requests/")
    assert response.json()["count"] == 4


# --- the applicant's forms -----------------------------------------------------------------------


def _form_payload(world, **overrides):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    data = {
        "organization": world.organization.pk, "principal_investigator_email": world.applicant.email,
        "signatory_email": world.signatory.email, "title": "病変検出AIの開発", "summary": "概要",
        "purpose": "academic", "expected_outputs": ["paper"], "legal_basis": "consent",
        "ethics_protocol": "", "ethics_committee_name": "社内倫理審査委員会", "ethics_approval_number": "R-1",
        "ethics_approval_date": today.isoformat(), "releases": [world.a.release.pk],
        "processing_level": "pseudonymised", "environment": "nii_cloud", "period_start": today.isoformat(),
        "period_end": (today + timedelta(days=300)).isoformat(),
        "user_0_email": world.applicant.email, "user_0_role": "principal", "user_0_training": "yes",
        "user_0_training_date": today.isoformat(),
    } | APPLICANT_FIELDS
    for key, answer in complete_answers().items():
        data[f"sec_{key}_status"] = answer["status"]
        data[f"sec_{key}_evidence"] = answer["evidence"]
    data.update(overrides)
    return data


def test_create_then_edit_and_submit_through_pages(client, world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(world.applicant)
    response = client.post(reverse("access:request_create"),
                           {"organization": world.organization.pk, "title": "病変検出AIの開発"})
    request = AccessRequest.objects.get()
    assert response["Location"] == reverse("access:request_edit", args=[request.pk])
    page = client.get(reverse("access:request_edit", args=[request.pk]))
    assert page.status_code == 200
    for section in ("team", "approvals", "purpose", "data", "environment", "period", "security"):
        assert f'data-section="{section}"' in page.content.decode()
    payload = _form_payload(world, ethics_approval_file=SimpleUploadedFile("a.pdf", b"%PDF-1.4\n%%EOF\n"),
                            submit="1")
    response = client.post(reverse("access:request_edit", args=[request.pk]), payload)
    assert response.status_code == 302, response.context["form"].errors
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert request.named_users.get().user == world.applicant


def test_submit_with_missing_answers_shows_each_and_stays_draft(client, world):
    client.force_login(world.applicant)
    request = svc.access_request_create(by=world.applicant, organization=world.organization, title="題名")
    payload = _form_payload(world, legal_basis="", purpose="", submit="1")
    payload.pop("sec_audit_status")
    response = client.post(reverse("access:request_edit", args=[request.pk]), payload)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Choose the purpose of use." in body
    assert "Choose the legal basis for the provision." in body
    assert "Give the evidence for the self-assessment item" not in body
    assert "Answer the self-assessment item “監査”." in body
    assert "Give the joint-research" not in body
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT


def test_edit_by_colleague_forbidden(client, world):
    request = draft(world)
    client.force_login(world.signatory)
    assert client.get(reverse("access:request_edit", args=[request.pk])).status_code == 403


# --- stewards ------------------------------------------------------------------------------------


def test_steward_queue_constant_queries_and_forbidden_to_others(client, world, django_assert_num_queries):
    submitted(world)
    client.force_login(world.a.steward)
    client.get(reverse("access:steward_queue"))
    with django_assert_num_queries(11) as first:  # 11: the extensions and changes of users awaiting
        response = client.get(reverse("access:steward_queue"))
    assert len(response.context["reviews"]) == 1
    for _index in range(3):
        submitted(world)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("access:steward_queue"))
    assert len(response.context["reviews"]) == 4
    client.force_login(world.applicant)
    assert client.get(reverse("access:steward_queue")).status_code == 403


def test_steward_screens_and_returns_through_pages(client, world):
    first = submitted(world)
    client.force_login(world.a.steward)
    page = client.get(reverse("access:steward_review", args=[first.pk, world.a.society.pk]))
    assert 'data-testid="security-assessment"' in page.content.decode()
    client.post(reverse("access:steward_screen", args=[first.pk, world.a.society.pk]), {"comment": "問題なし"})
    assert AccessRequest.objects.get(pk=first.pk).status == RequestStatus.COMMITTEE_REVIEW
    second = submitted(world)
    client.post(reverse("access:steward_return", args=[second.pk, world.a.society.pk]), {"reason": "期間を短く"})
    assert AccessRequest.objects.get(pk=second.pk).status == RequestStatus.RETURNED


def test_other_society_steward_cannot_screen(client, world):
    request = submitted(world, releases=[world.a.release, world.b.release])
    client.force_login(world.b.steward)
    response = client.post(reverse("access:steward_screen", args=[request.pk, world.a.society.pk]))
    assert response.status_code == 403
    assert set(SocietyReview.objects.values_list("status", flat=True)) == {"screening"}


# --- committee -----------------------------------------------------------------------------------


def test_committee_inbox_constant_queries(client, world, django_assert_num_queries):
    in_committee(world)
    member = world.a.members[1]
    client.force_login(member)
    client.get(reverse("access:committee_inbox"))
    with django_assert_num_queries(9) as first:
        response = client.get(reverse("access:committee_inbox"))
    assert len(response.context["reviews"]) == 1
    for _index in range(3):
        in_committee(world)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("access:committee_inbox"))
    assert len(response.context["reviews"]) == 4


def test_recused_member_sees_why_and_cannot_vote(client, world):
    request = in_committee(world)
    member = world.a.members[0]
    OrganizationMembershipFactory(user=member, organization=world.organization)
    client.force_login(member)
    page = client.get(reverse("access:committee_review", args=[request.pk, world.a.society.pk]))
    body = page.content.decode()
    assert "You belong to the applicant organisation." in body
    assert 'data-testid="vote-form"' not in body
    response = client.post(reverse("access:committee_vote", args=[request.pk, world.a.society.pk]),
                           {"vote": "approve"}, follow=True)
    assert _messages(response) == [
        "You are recused from this application: You belong to the applicant organisation."]
    assert not CommitteeVote.objects.exists()


def test_committee_votes_and_decides_through_pages(client, world):
    request = in_committee(world)
    for member in world.a.members[:2]:
        client.force_login(member)
        client.post(reverse("access:committee_vote", args=[request.pk, world.a.society.pk]), {"vote": "approve"})
    assert CommitteeVote.objects.count() == 2
    response = client.post(reverse("access:committee_decide", args=[request.pk, world.a.society.pk]),
                           {"outcome": "approved_with_conditions", "conditions": "年1回の報告"}, follow=True)
    assert _messages(response)[-1] == "The decision was recorded."
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


# --- signature and countersignature --------------------------------------------------------------


def test_sign_page_non_signatory_forbidden_and_nothing_changed(client, world):
    request = approved(world)
    client.force_login(world.applicant)
    assert client.post(reverse("access:request_sign", args=[request.pk]),
                       {"signatory_name": "x", "signatory_title": "y", "agree": "on"}).status_code == 403
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert not request.agreements.exists()


def test_sign_and_countersign_through_pages(client, world):
    request = in_committee(world, releases=[world.a.release, world.b.release])
    decide(world, request, world.a, "approved")
    decide(world, request, world.b, "rejected", reasons="理由")
    client.force_login(world.signatory)
    page = client.get(reverse("access:request_sign", args=[request.pk]))
    body = page.content.decode()
    assert 'data-testid="terms-side-by-side"' in body
    assert world.a.society.name_ja in body
    client.post(reverse("access:request_sign", args=[request.pk]),
                {"signatory_name": "代表 花子", "signatory_title": "代表取締役", "agree": "on"})
    request.refresh_from_db()
    assert request.status == RequestStatus.SIGNED
    client.force_login(world.b.admin)
    assert client.get(reverse("access:steward_countersign", args=[request.pk, world.b.society.pk])).status_code == 200
    response = client.post(reverse("access:steward_countersign", args=[request.pk, world.b.society.pk]),
                           {"countersigner_name": "x", "countersigner_title": "y"})
    assert _messages(response) == [
        f"No agreement of {world.b.society} awaits a countersignature on this application."]
    assert not request.grants.exists()
    client.force_login(world.a.steward)
    assert client.get(reverse("access:steward_countersign", args=[request.pk, world.a.society.pk])).status_code == 403
    client.force_login(world.a.admin)
    client.post(reverse("access:steward_countersign", args=[request.pk, world.a.society.pk]),
                {"countersigner_name": "学会 理事長", "countersigner_title": "理事長"})
    request.refresh_from_db()
    assert request.status == RequestStatus.GRANTED
    assert list(request.grants.values_list("society_id", flat=True)) == [world.a.society.pk]


def test_japanese_list_page_renders(client, world):
    client.cookies["django_language"] = "ja"
    draft(world)
    client.force_login(world.applicant)
    response = client.get(reverse("access:request_list"))
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "ja"


def test_comments_by_audience_on_page_and_api(client, world):
    request = in_committee(world)
    svc.access_request_comment(access_request=request, body="申請者への質問", audience="applicant",
                               society=world.a.society, by=world.a.steward)
    svc.access_request_comment(access_request=request, body="委員への申し送り", audience="reviewers",
                               society=world.a.society, by=world.a.steward)
    svc.access_request_comment(access_request=request, body="管理者のみ", audience="stewards",
                               society=world.a.society, by=world.a.steward)
    expected = {
        world.applicant: ["申請者への質問"],
        world.a.members[1]: ["申請者への質問", "委員への申し送り"],
        world.a.steward: ["申請者への質問", "委員への申し送り", "管理者のみ"],
    }
    for user, bodies in expected.items():
        client.force_login(user)
        page = client.get(_detail(request.pk)).content.decode()
        api = [c["body"] for c in client.get(f"/api/v1/access/requests/{request.pk}/").json()["comments"]]
        assert api == bodies, user
        for body in ["申請者への質問", "委員への申し送り", "管理者のみ"]:
            assert (body in page) is (body in bodies), (user, body)


# --- a6: the PI's details, the head, the security level --------------------------------------------


def test_applicant_details_shown_to_applicant_reviewers_and_the_api(client, world):
    request = submitted(world)
    client.cookies["django_language"] = "ja"
    for user, url in ((world.applicant, _detail(request.pk)),
                      (world.a.steward, reverse("access:steward_review", args=[request.pk, world.a.society.pk]))):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert " (主任研究員)</dd>" in body, user
        assert 'data-testid="pi-researcher-number">e-Rad 研究者番号 12345678<' in body, user
        assert "Gastric Cancer 2024;27:1-10" in body, user
        assert "機関 長 (代表取締役) &lt;head@company.example.co.jp&gt;" in body, user
        assert 'data-testid="security-level">ハイレベル（Type II）<' in body, user
    api = client.get(f"/api/v1/access/requests/{request.pk}/").json()
    assert {key: api[key] for key in APPLICANT_FIELDS} == APPLICANT_FIELDS


def test_form_refuses_a_level_the_self_assessment_does_not_meet(client, world):
    client.force_login(world.applicant)
    client.cookies["django_language"] = "en"
    request = svc.access_request_create(by=world.applicant, organization=world.organization, title="題名")
    payload = _form_payload(world, security_level="type_2", sec_backup_status="partial", submit="1")
    response = client.post(reverse("access:request_edit", args=[request.pk]), payload)
    assert response.status_code == 200
    assert ("High level (Type II) needs these self-assessment items in place: バックアップ（複数世代・オフライン）."
            in response.content.decode())
    request.refresh_from_db()
    assert (request.status, request.security_level) == (RequestStatus.DRAFT, "type_2")  # saved, not submitted


def test_api_writes_the_a6_fields_and_refuses_what_the_page_refuses(client, world):
    from tests.ethics.test_review_api import Caller

    request = draft(world, security_level="type_1")
    applicant = Caller(client, world.applicant)
    url = f"/api/v1/access/requests/{request.pk}/"
    response = applicant.patch(url, {"pi_researcher_number_kind": "erad", "pi_researcher_number": "1234"})
    assert response.status_code == 400
    assert response.json()["errors"]["pi_researcher_number"] == [
        "An e-Rad researcher number has 8 digits (for example 12345678)."]
    request.refresh_from_db()
    assert request.pi_researcher_number == "12345678"
    response = applicant.patch(url, {"security_level": "type_2", "head_title": "取締役社長",
                                     "security_answers": {"backup": {"status": "partial", "evidence": "一部"}}})
    assert response.status_code == 200, response.content
    assert (response.json()["security_level"], response.json()["head_title"]) == ("type_2", "取締役社長")
    response = applicant.post(f"{url}submit/")
    assert response.status_code == 400
    assert response.json()["errors"]["security_level"] == [
        "High level (Type II) needs these self-assessment items in place: バックアップ（複数世代・オフライン）."]
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT
