"""The data-access application workflow through its services: submission, screening, committee,
decision per society, signature, countersignature, revocation, withdrawal and closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from portal.access.models import (
    AccessRequest,
    CommitteeVote,
    Grant,
    RequestComment,
    RequestStatus,
    SecurityAnswer,
    SocietyReview,
)
from portal.access.security_items import SECURITY_ITEMS
from portal.access.services import requests as svc
from portal.access.workflow import AccessRefused, TransitionNotAllowed
from portal.audit.models import AuditEvent
from portal.datasets.models import DatasetStatus
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import agreement_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release
from tests.factories.ethics import permitted_protocol

pytestmark = pytest.mark.django_db

V = SocietyReview.Status


@dataclass
class Side:
    society: object
    steward: object
    admin: object
    members: list
    release: object


def _side(slug: str, name: str) -> Side:
    society = SocietyFactory(slug=slug, name_ja=name)
    steward = UserFactory(email=f"steward@{slug}.example.jp")
    admin = UserFactory(email=f"admin@{slug}.example.jp")
    SocietyMembershipFactory(society=society, user=steward, role="steward")
    SocietyMembershipFactory(society=society, user=admin, role="admin")
    members = []
    for index in range(3):
        member = UserFactory(email=f"dac{index}@{slug}.example.jp")
        SocietyMembershipFactory(society=society, user=member, role="access_committee")
        members.append(member)
    for user in (steward, admin, *members):
        give_totp(user)
    dataset = DatasetFactory(society=society, status=DatasetStatus.PUBLISHED, published_at=timezone.now())
    release = make_release(dataset, [FileSpec(subject="a" * 64)], store=False)
    agreement_version(society)
    return Side(society, steward, admin, members, release)


@dataclass
class World:
    organization: object
    applicant: object
    signatory: object
    colleague: object
    a: Side
    b: Side
    protocol: object


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return make_world()


def make_world() -> World:
    organization = OrganizationFactory(kind="company", name_ja="画像解析株式会社")
    applicant = UserFactory(email="applicant@corp.example.jp", full_name="申請 太郎")
    signatory = UserFactory(email="ceo@corp.example.jp", full_name="代表 花子")
    colleague = UserFactory(email="colleague@corp.example.jp", full_name="分担 次郎")
    for user in (applicant, signatory, colleague):
        OrganizationMembershipFactory(user=user, organization=organization)
    return World(organization, applicant, signatory, colleague, _side("jsp", "日本病理学会"),
                 _side("jges", "日本消化器内視鏡学会"), permitted_protocol())


# REGULATION.md a6: the PI's title, researcher number and record; the head; the security level.
APPLICANT_FIELDS = {
    "pi_title": "主任研究員", "pi_researcher_number_kind": "erad", "pi_researcher_number": "12345678",
    "pi_research_record": "Gastric Cancer 2024;27:1-10", "head_name": "機関 長", "head_title": "代表取締役",
    "head_email": "head@company.example.co.jp", "security_level": "type_2",
}


def complete_answers() -> dict[str, dict[str, str]]:
    answers = {item.key: {"status": "done", "evidence": f"{item.key} 規程第3条"} for item in SECURITY_ITEMS}
    answers["approved_external_server"] = {"status": "not_applicable", "evidence": ""}
    return answers


def draft(world: World, *, releases=None, **overrides) -> AccessRequest:  # type: ignore[no-untyped-def]
    request = svc.access_request_create(by=world.applicant, organization=world.organization,
                                        title="内視鏡画像による病変検出AIの開発")
    today = timezone.localdate()
    fields = {
        "signatory": world.signatory, "summary": "概要", "purpose": "academic",
        "expected_outputs": ["paper", "ai_model"], "legal_basis": "consent",
        "ethics_protocol": world.protocol, "processing_level": "pseudonymised", "environment": "on_premise",
        "period_start": today, "period_end": today + timedelta(days=365),
    } | APPLICANT_FIELDS | overrides
    svc.access_request_update(
        access_request=request, by=world.applicant,
        releases=releases if releases is not None else [world.a.release],
        named_users=[
            {"user": world.applicant, "role": "principal", "ethics_training": True, "ethics_training_date": today},
            {"user": world.colleague, "role": "co_investigator", "ethics_training": False},
        ],
        security_answers=complete_answers(), **fields,
    )
    return request


def submitted(world: World, **kwargs) -> AccessRequest:  # type: ignore[no-untyped-def]
    request = draft(world, **kwargs)
    return svc.access_request_submit(access_request=request, by=world.applicant)


def in_committee(world: World, side: Side | None = None, **kwargs) -> AccessRequest:  # type: ignore[no-untyped-def]
    request = submitted(world, **kwargs)
    for review in request.society_reviews.select_related("society"):
        s = world.a if review.society_id == world.a.society.pk else world.b
        if side is None or s is side:
            svc.access_request_screen(access_request=request, society=s.society, by=s.steward)
    request.refresh_from_db()
    return request


def decide(world: World, request: AccessRequest, side: Side, outcome: str = "approved", **extra) -> None:  # type: ignore[no-untyped-def]
    vote = {"approved": "approve", "approved_with_conditions": "approve_with_conditions", "rejected": "reject"}[outcome]
    for member in side.members[:2]:
        svc.access_request_vote(access_request=request, society=side.society, vote=vote, by=member,
                                comment="条件: 年1回の報告" if "conditions" in outcome else "")
    svc.access_request_decide(access_request=request, society=side.society, outcome=outcome, by=side.members[0],
                              **extra)
    request.refresh_from_db()


def approved(world: World, **kwargs) -> AccessRequest:  # type: ignore[no-untyped-def]
    request = in_committee(world, **kwargs)
    decide(world, request, world.a)
    return request


def _audits(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


# --- drafting and submission ---------------------------------------------------------------------


def test_create_for_foreign_organisation_refused_and_creates_nothing(world):
    with pytest.raises(AccessRefused):
        svc.access_request_create(by=world.applicant, organization=OrganizationFactory(), title="x")
    assert AccessRequest.objects.count() == 0


def test_submit_creates_one_screening_review_per_society_and_tells_stewards(
    world, mailoutbox, django_capture_on_commit_callbacks,
):
    request = draft(world, releases=[world.a.release, world.b.release])
    with django_capture_on_commit_callbacks(execute=True):
        svc.access_request_submit(access_request=request, by=world.applicant)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert request.reference == f"DAR-{timezone.localdate().year}-00001"
    assert sorted(request.society_reviews.values_list("society__slug", "status")) == [
        ("jges", "screening"), ("jsp", "screening")]
    assert sorted(m.to[0] for m in mailoutbox) == ["steward@jges.example.jp", "steward@jsp.example.jp"]
    assert _audits("access.request_submitted") == 1


def test_submit_empty_application_names_every_missing_answer_and_changes_nothing(world):
    request = svc.access_request_create(by=world.applicant, organization=world.organization, title="題名")
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    errors = caught.value.message_dict
    assert sorted(errors) == sorted([
        "signatory", "named_users", "purpose", "expected_outputs", "legal_basis", "ethics_approval", "releases",
        "processing_level", "environment", "security_answers", "period",
        "pi_title", "pi_researcher_number", "pi_research_record", "head", "security_level",
    ])
    assert len(errors["security_answers"]) == len(SECURITY_ITEMS)
    assert "Answer the self-assessment item “情報セキュリティ責任者・情報管理者の指名”." in errors["security_answers"]
    assert errors["ethics_approval"] == [
        "Choose an ethics approval in the portal or give the approval notice (PDF), the committee's name, "
        "the approval number, the approval date."]
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT
    assert request.reference is None
    assert not SocietyReview.objects.exists()


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"legal_basis": "joint_use"}, "joint_research",
     "Give the joint-research agreement's number, parties, date for this legal basis."),
    ({"legal_basis": "academic_exemption", "purpose": "product_development"}, "legal_basis",
     "Product development cannot rest on the academic-research exemption alone: give the joint-research "
     "agreement (number, parties, date)."),
    ({"legal_basis": "outsourcing", "purpose": "product_development"}, "legal_basis",
     "Outsourcing cannot carry product development for the company's own purposes; choose another legal basis."),
    ({"period_end": timezone.localdate()}, "period", "The period must end after it starts."),
    ({"period_end": timezone.localdate() + timedelta(days=3 * 365 + 2)}, "period",
     "The period of use may last at most three years."),
    ({"foreign_access": True}, "foreign_country", "Name the country from which the data will be accessed."),
])
def test_submit_rules_name_the_problem(world, overrides, field, message):
    request = draft(world, **overrides)
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {field: [message]}
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT


def test_academic_exemption_with_joint_research_details_submits(world):
    request = draft(world, legal_basis="academic_exemption", purpose="product_development",
                    joint_research_number="JR-2026-01", joint_research_parties="日本病理学会・画像解析株式会社",
                    joint_research_date=timezone.localdate())
    svc.access_request_submit(access_request=request, by=world.applicant)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED


def test_security_evidence_required_unless_not_applicable(world):
    request = draft(world, security_level="type_1")  # Type I does not need audits in place
    svc.access_request_update(access_request=request, by=world.applicant,
                              security_answers={"audit": {"status": "partial", "evidence": ""}})
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"security_answers": ["Give the evidence for the self-assessment item “監査”."]}


# --- a6: the PI, the head of the institution, the security level against the self-assessment -----


def test_claiming_type_ii_without_its_items_in_place_is_refused_naming_them(world):
    request = draft(world, security_level="type_2")
    svc.access_request_update(access_request=request, by=world.applicant, security_answers={
        "network_isolation": {"status": "partial", "evidence": "一部のみ隔離"},
        "backup": {"status": "not_done", "evidence": "未整備"},
    })
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"security_level": [
        "High level (Type II) needs these self-assessment items in place: "
        "ファイアウォール・インターネットからの隔離、バックアップ（複数世代・オフライン）."]}
    request.refresh_from_db()
    assert (request.status, request.reference, request.society_reviews.count()) == ("draft", None, 0)
    assert _audits("access.request_submitted") == 0
    # The same self-assessment is enough for Type I, which needs neither item.
    svc.access_request_update(access_request=request, by=world.applicant, security_level="type_1")
    svc.access_request_submit(access_request=request, by=world.applicant)
    request.refresh_from_db()
    assert (request.status, request.security_level) == ("submitted", "type_1")


def test_external_server_needs_the_external_server_item_at_either_level(world):
    request = draft(world, security_level="type_1", environment="external_server")
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"security_level": [
        "Standard level (Type I) needs these self-assessment items in place: 機関外サーバの要件（NBDC承認相当）."]}


def test_submit_needs_the_pi_details_and_the_head(world):
    request = draft(world, pi_title="", pi_researcher_number="", pi_research_record=" ", head_title="",
                    head_email="", security_level="")
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {
        "pi_title": ["Give the principal investigator's title."],
        "pi_researcher_number": ["Give the principal investigator's e-Rad researcher number or researchmap ID."],
        "pi_research_record": ["Give the principal investigator's research record (related papers)."],
        "head": ["Give the head of the applicant's institution: title, e-mail."],
        "security_level": ["Choose the security level you claim (Type I or Type II)."],
    }
    request.refresh_from_db()
    assert request.status == "draft"


@pytest.mark.parametrize(("kind", "number", "stored"), [
    ("erad", "1234-5678", "12345678"),
    ("researchmap", "https://researchmap.jp/read0123456/", "read0123456"),
    ("researchmap", "taro_yamada", "taro_yamada"),
])
def test_researcher_number_is_normalised(world, kind, number, stored):
    request = draft(world, pi_researcher_number_kind=kind, pi_researcher_number=number)
    request.refresh_from_db()
    assert request.pi_researcher_number == stored


@pytest.mark.parametrize(("kind", "number", "field", "message"), [
    ("erad", "1234567", "pi_researcher_number", "An e-Rad researcher number has 8 digits (for example 12345678)."),
    ("erad", "R0012345", "pi_researcher_number", "An e-Rad researcher number has 8 digits (for example 12345678)."),
    ("researchmap", "山田", "pi_researcher_number",
     "A researchmap ID is 3 to 64 letters, digits, “_”, “.” or “-” (for example read0123456)."),
    ("", "12345678", "pi_researcher_number_kind", "Choose the kind of researcher number (e-Rad or researchmap)."),
])
def test_bad_researcher_number_refused_and_changes_nothing(world, kind, number, field, message):
    request = draft(world)
    before = _audits("access.request_updated")
    with pytest.raises(ValidationError) as caught:
        svc.access_request_update(access_request=request, by=world.applicant,
                                  pi_researcher_number_kind=kind, pi_researcher_number=number, pi_title="変更")
    assert caught.value.message_dict == {field: [message]}
    request.refresh_from_db()
    assert (request.pi_researcher_number_kind, request.pi_researcher_number, request.pi_title) == (
        "erad", "12345678", "主任研究員")
    assert _audits("access.request_updated") == before


def test_uploaded_ethics_approval_needs_committee_number_and_date(world):
    request = draft(world, ethics_protocol=None,
                    ethics_approval_file=SimpleUploadedFile("approval.pdf", b"%PDF-1.4\n%%EOF\n"),
                    ethics_committee_name="社内倫理審査委員会")
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"ethics_approval": [
        "Choose an ethics approval in the portal or give the approval number, the approval date."]}
    svc.access_request_update(access_request=request, by=world.applicant, ethics_approval_number="R-12",
                              ethics_approval_date=timezone.localdate())
    svc.access_request_submit(access_request=request, by=world.applicant)
    assert AccessRequest.objects.get().status == RequestStatus.SUBMITTED


def test_suspended_ethics_protocol_refused(world):
    world.protocol.status = "suspended"
    world.protocol.save()
    request = draft(world)
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert list(caught.value.message_dict) == ["ethics_protocol"]


def test_unpublished_dataset_release_refused(world):
    dataset = world.a.release.dataset
    dataset.status = DatasetStatus.WITHDRAWN
    dataset.withdrawn_at = timezone.now()
    dataset.withdrawal_reason = "試験のため取下げ"
    dataset.save()
    request = draft(world)
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"releases": [
        f"{world.a.release} cannot be requested: it is not available in the catalogue."]}


def test_submit_by_someone_else_refused(world):
    request = draft(world)
    with pytest.raises(AccessRefused):
        svc.access_request_submit(access_request=request, by=world.colleague)
    assert AccessRequest.objects.get().status == RequestStatus.DRAFT


def test_update_after_submission_refused_and_changes_nothing(world):
    request = submitted(world)
    with pytest.raises(TransitionNotAllowed):
        svc.access_request_update(access_request=request, by=world.applicant, title="変更")
    request.refresh_from_db()
    assert request.title == "内視鏡画像による病変検出AIの開発"


# --- screening and return ------------------------------------------------------------------------


def test_steward_return_sends_whole_request_back_and_resubmission_rescreens(
    world, mailoutbox, django_capture_on_commit_callbacks,
):
    request = submitted(world, releases=[world.a.release, world.b.release])
    svc.access_request_screen(access_request=request, society=world.b.society, by=world.b.steward)
    with django_capture_on_commit_callbacks(execute=True):
        svc.access_request_return(access_request=request, society=world.a.society, reason="目的を具体的に",
                                  by=world.a.steward)
    request.refresh_from_db()
    assert request.status == RequestStatus.RETURNED
    assert [m.to for m in mailoutbox] == [["applicant@corp.example.jp"]]
    comment = RequestComment.objects.get()
    assert (comment.audience, comment.body) == ("applicant", "目的を具体的に")
    svc.access_request_update(access_request=request, by=world.applicant, summary="具体的な目的")
    svc.access_request_submit(access_request=request, by=world.applicant)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert request.reference == f"DAR-{timezone.localdate().year}-00001"
    assert set(request.society_reviews.values_list("status", flat=True)) == {"screening"}


def test_return_by_other_society_steward_refused(world):
    request = submitted(world)
    with pytest.raises(AccessRefused):
        svc.access_request_return(access_request=request, society=world.a.society, reason="x", by=world.b.steward)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert not RequestComment.objects.exists()


def test_return_without_reason_refused(world):
    request = submitted(world)
    with pytest.raises(ValidationError):
        svc.access_request_return(access_request=request, society=world.a.society, reason=" ", by=world.a.steward)
    assert AccessRequest.objects.get().status == RequestStatus.SUBMITTED


def test_screen_passes_to_committee_and_tells_members(world, mailoutbox, django_capture_on_commit_callbacks):
    request = submitted(world)
    with django_capture_on_commit_callbacks(execute=True):
        svc.access_request_screen(access_request=request, society=world.a.society, by=world.a.steward)
    request.refresh_from_db()
    assert request.status == RequestStatus.COMMITTEE_REVIEW
    assert request.society_reviews.get().status == V.COMMITTEE
    assert sorted(m.to[0] for m in mailoutbox) == [f"dac{i}@jsp.example.jp" for i in range(3)]
    assert all(len(m.to) == 1 for m in mailoutbox)


def test_screen_twice_refused_naming_states(world):
    request = in_committee(world)
    with pytest.raises(TransitionNotAllowed) as caught:
        svc.access_request_screen(access_request=request, society=world.a.society, by=world.a.steward)
    assert "Data access committee review" in str(caught.value)


# --- committee -----------------------------------------------------------------------------------


def test_member_of_applicant_organisation_is_recused(world):
    request = in_committee(world)
    member = world.a.members[0]
    OrganizationMembershipFactory(user=member, organization=world.organization)
    with pytest.raises(AccessRefused) as caught:
        svc.access_request_vote(access_request=request, society=world.a.society, vote="approve", by=member)
    assert str(caught.value) == "You are recused from this application: You belong to the applicant organisation."
    assert not CommitteeVote.objects.exists()


def test_named_user_member_is_recused(world):
    request = in_committee(world)
    SocietyMembershipFactory(society=world.a.society, user=world.colleague, role="access_committee")
    with pytest.raises(AccessRefused) as caught:
        svc.access_request_vote(access_request=request, society=world.a.society, vote="approve", by=world.colleague)
    assert "You are a named user of this application." in str(caught.value)
    assert not CommitteeVote.objects.exists()


def test_decision_needs_quorum_of_two_votes(world):
    request = in_committee(world)
    svc.access_request_vote(access_request=request, society=world.a.society, vote="approve", by=world.a.members[0])
    with pytest.raises(AccessRefused) as caught:
        svc.access_request_decide(access_request=request, society=world.a.society, outcome="approved",
                                  by=world.a.members[0])
    assert str(caught.value) == ("A decision needs at least 2 votes of members who are not recused; 1 so far.")
    assert SocietyReview.objects.get().status == V.COMMITTEE
    assert AccessRequest.objects.get().status == RequestStatus.COMMITTEE_REVIEW


def test_vote_by_non_member_refused(world):
    request = in_committee(world)
    with pytest.raises(AccessRefused):
        svc.access_request_vote(access_request=request, society=world.a.society, vote="approve",
                                by=world.b.members[0])
    assert not CommitteeVote.objects.exists()


def test_vote_changed_not_duplicated(world):
    request = in_committee(world)
    member = world.a.members[0]
    svc.access_request_vote(access_request=request, society=world.a.society, vote="approve", by=member)
    svc.access_request_vote(access_request=request, society=world.a.society, vote="reject", by=member)
    assert list(CommitteeVote.objects.values_list("vote", flat=True)) == ["reject"]


def test_conditional_approval_needs_conditions(world):
    request = in_committee(world)
    with pytest.raises(ValidationError):
        svc.access_request_decide(access_request=request, society=world.a.society,
                                  outcome="approved_with_conditions", by=world.a.members[0])
    assert SocietyReview.objects.get().status == V.COMMITTEE


def test_approval_tells_applicant_and_signatory(world, mailoutbox, django_capture_on_commit_callbacks):
    request = in_committee(world)
    with django_capture_on_commit_callbacks(execute=True):
        decide(world, request, world.a, "approved_with_conditions", conditions="年1回の利用報告")
    assert request.status == RequestStatus.APPROVED
    review = request.society_reviews.get()
    assert (review.status, review.conditions) == ("approved_with_conditions", "年1回の利用報告")
    assert [m.to for m in mailoutbox] == [["applicant@corp.example.jp"], ["ceo@corp.example.jp"]]


def test_all_societies_reject_rejects_request(world):
    request = in_committee(world, releases=[world.a.release, world.b.release])
    decide(world, request, world.a, "rejected", reasons="目的が不明確")
    assert request.status == RequestStatus.COMMITTEE_REVIEW
    decide(world, request, world.b, "rejected", reasons="安全管理が不十分")
    assert request.status == RequestStatus.REJECTED


# --- signature, countersignature, grant ----------------------------------------------------------


def test_signature_by_non_signatory_refused_and_nothing_changed(world):
    from portal.agreements.models import SignedAgreement

    request = approved(world)
    with pytest.raises(AccessRefused):
        svc.access_request_sign(access_request=request, signatory_name="申請 太郎", signatory_title="部長",
                                ip="192.0.2.1", by=world.applicant)
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert not SignedAgreement.objects.exists()
    assert _audits("access.request_signed") == 0


def test_multi_society_one_rejects_one_approves_only_approving_signed_and_granted(
    world, mailoutbox, django_capture_on_commit_callbacks,
):
    from portal.agreements.models import SignedAgreement

    request = in_committee(world, releases=[world.a.release, world.b.release])
    decide(world, request, world.a, "rejected", reasons="目的が不明確")
    decide(world, request, world.b, "approved")
    assert request.status == RequestStatus.APPROVED
    with django_capture_on_commit_callbacks(execute=True):
        agreements = svc.access_request_sign(access_request=request, signatory_name="代表 花子",
                                             signatory_title="代表取締役", ip="192.0.2.1", by=world.signatory)
    assert [a.society_id for a in agreements] == [world.b.society.pk]
    request.refresh_from_db()
    assert request.status == RequestStatus.SIGNED
    assert [m.to for m in mailoutbox] == [["admin@jges.example.jp"]]
    with pytest.raises(AccessRefused):
        svc.access_request_countersign(access_request=request, society=world.a.society, countersigner_name="a",
                                       countersigner_title="b", ip=None, by=world.a.admin)
    grant = svc.access_request_countersign(access_request=request, society=world.b.society,
                                           countersigner_name="学会 理事長", countersigner_title="理事長",
                                           ip="192.0.2.2", by=world.b.admin)
    request.refresh_from_db()
    assert request.status == RequestStatus.GRANTED
    assert grant.society_id == world.b.society.pk
    assert list(Grant.objects.values_list("society_id", flat=True)) == [world.b.society.pk]
    assert list(SignedAgreement.objects.values_list("society_id", "status")) == [(world.b.society.pk, "completed")]


def test_countersign_by_steward_refused_and_nothing_changed(world):
    from portal.agreements.models import SignedAgreement

    request = approved(world)
    svc.access_request_sign(access_request=request, signatory_name="代表 花子", signatory_title="代表取締役",
                            ip=None, by=world.signatory)
    with pytest.raises(AccessRefused):
        svc.access_request_countersign(access_request=request, society=world.a.society, countersigner_name="x",
                                       countersigner_title="y", ip=None, by=world.a.steward)
    assert SignedAgreement.objects.get().status == "signed"
    assert not Grant.objects.exists()
    assert AccessRequest.objects.get().status == RequestStatus.SIGNED


def _granted(world: World) -> AccessRequest:
    request = approved(world)
    svc.access_request_sign(access_request=request, signatory_name="代表 花子", signatory_title="代表取締役",
                            ip=None, by=world.signatory)
    svc.access_request_countersign(access_request=request, society=world.a.society, countersigner_name="理事長",
                                   countersigner_title="理事長", ip=None, by=world.a.admin)
    request.refresh_from_db()
    return request


def test_revoke_by_steward_revokes_grants_and_request(world):
    request = _granted(world)
    svc.access_request_revoke(access_request=request, society=world.a.society, reason="規約違反", by=world.a.steward)
    request.refresh_from_db()
    assert request.status == RequestStatus.REVOKED
    assert list(Grant.objects.values_list("status", flat=True)) == ["revoked"]


def test_revoke_by_applicant_refused(world):
    request = _granted(world)
    with pytest.raises(AccessRefused):
        svc.access_request_revoke(access_request=request, society=world.a.society, reason="x", by=world.applicant)
    assert AccessRequest.objects.get().status == RequestStatus.GRANTED
    assert list(Grant.objects.values_list("status", flat=True)) == ["active"]


def test_withdraw_before_grant_and_refused_after(world):
    request = submitted(world)
    with pytest.raises(AccessRefused):
        svc.access_request_withdraw(access_request=request, by=world.a.steward)
    svc.access_request_withdraw(access_request=request, by=world.applicant)
    assert AccessRequest.objects.get().status == RequestStatus.WITHDRAWN


def test_withdraw_granted_refused(world):
    request = _granted(world)
    with pytest.raises(TransitionNotAllowed):
        svc.access_request_withdraw(access_request=request, by=world.applicant)
    assert AccessRequest.objects.get().status == RequestStatus.GRANTED


def test_close_after_grants_end(world):
    request = _granted(world)
    svc.access_request_close(access_request=request, by=world.a.steward)
    assert AccessRequest.objects.get().status == RequestStatus.GRANTED  # a grant is still in force
    Grant.objects.update(status=Grant.Status.ENDED)
    svc.access_request_close(access_request=request, by=world.a.steward)
    assert AccessRequest.objects.get().status == RequestStatus.CLOSED
    assert _audits("access.request_closed") == 1


def test_comment_audiences(world):
    request = in_committee(world)
    svc.access_request_comment(access_request=request, body="質問です", audience="applicant", by=world.applicant)
    with pytest.raises(AccessRefused):
        svc.access_request_comment(access_request=request, body="内部", audience="reviewers", by=world.applicant)
    svc.access_request_comment(access_request=request, body="委員向け", audience="reviewers",
                               society=world.a.society, by=world.a.members[0])
    with pytest.raises(AccessRefused):
        svc.access_request_comment(access_request=request, body="管理者向け", audience="stewards",
                                   society=world.a.society, by=world.a.members[0])
    assert list(RequestComment.objects.values_list("body", flat=True)) == ["質問です", "委員向け"]


def test_security_answers_saved_per_item(world):
    request = draft(world)
    assert SecurityAnswer.objects.filter(access_request=request).count() == len(SECURITY_ITEMS)


def test_training_yes_needs_a_date(world):
    request = draft(world)
    svc.access_request_update(access_request=request, by=world.applicant, named_users=[
        {"user": world.colleague, "role": "co_investigator", "ethics_training": True}])
    with pytest.raises(ValidationError) as caught:
        svc.access_request_submit(access_request=request, by=world.applicant)
    assert caught.value.message_dict == {"named_users": [
        f"Give the date of the research-ethics training of {world.colleague}."]}
