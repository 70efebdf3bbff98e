"""Protocols through review: who may act, what must be filled in, quorum, recusal, permission."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import (
    ConflictDeclaration,
    Decision,
    ProtocolStatus,
    ProtocolVersion,
    Review,
)
from portal.ethics.selectors import protocol_data_flow, protocols_visible_to, review_inbox
from portal.ethics.workflow import TransitionNotAllowed
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _complete_items() -> dict[str, dict[str, str]]:
    items = {}
    for spec in PROTOCOL_ITEMS:
        if spec.always_required:
            items[spec.key] = {"body": f"{spec.label} の記載"}
        else:
            items[spec.key] = {"not_applicable_reason": "侵襲を伴わない観察研究のため該当しない"}
    items["title"] = {"body": "内視鏡画像を用いた胃がん検出AIの開発"}
    return items


def _draft(setting, consent="opt_out"):  # type: ignore[no-untyped-def]
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"],
        title="内視鏡画像を用いた胃がん検出AIの開発", by=setting["applicant"],
    )
    fields = {"consent_procedure": consent}
    if consent in {"opt_out", "simplified"}:
        fields |= {
            "justification_minimal_risk": "既存の画像のみを用い、侵襲はない。",
            "justification_no_disadvantage": "診療に影響しない。",
            "justification_impracticable": "数万人から個別に同意を得ることは困難である。",
            "justification_social_importance": "胃がんの早期発見に資する。",
        }
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], fields=fields, items=_complete_items())
    if consent in {"opt_out", "simplified"}:
        services.attachment_add(
            protocol=protocol, kind="opt_out_notice", by=setting["applicant"],
            upload=SimpleUploadedFile("optout.pdf", PDF, content_type="application/pdf"),
        )
    return protocol


def _to_review(setting, mode="full_board"):  # type: ignore[no-untyped-def]
    protocol = _draft(setting)
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    office = setting["members"]["secretariat"].user
    review = services.review_open(
        protocol=protocol, mode=mode, by=office,
        expedited_ground="no_invasion" if mode == "expedited" else "",
    )
    return protocol, review


def _attend_all(setting, review):  # type: ignore[no-untyped-def]
    voters = [m for m in setting["members"].values() if m.votes]
    services.attendance_record(review=review, members=voters, by=setting["members"]["secretariat"].user)


def _approve(setting, review, outcome="approved", **extra):  # type: ignore[no-untyped-def]
    return services.decision_record(
        review=review, outcome=outcome, method="unanimous", reasons="科学的・倫理的に妥当である。",
        approved_until=timezone.localdate() + timedelta(days=365), by=setting["members"]["chair"].user, **extra,
    )


# --- Drafting and submission -----------------------------------------------------------------


def test_submit_incomplete_names_every_missing_item(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )

    with pytest.raises(ValidationError) as refused:
        services.protocol_submit(protocol=protocol, by=setting["applicant"])

    messages = refused.value.messages
    # Items 3-15: item ② starts with the applicant as the site's principal investigator.
    assert len([m for m in messages if ": required" in m]) == 13
    assert len([m for m in messages if "say why it does not apply" in m]) == 10  # items 16-25
    assert "Consent procedure: choose one" in messages
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.DRAFT
    assert protocol.number is None


def test_submit_opt_out_without_justifications_or_notice_is_refused(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "opt_out"}, items=_complete_items()
    )

    with pytest.raises(ValidationError) as refused:
        services.protocol_submit(protocol=protocol, by=setting["applicant"])

    messages = refused.value.messages
    assert len([m for m in messages if m.startswith("Justification (")]) == 4
    assert "Opt-out notice draft: attach it" in messages


def test_submit_complete_freezes_version_and_numbers_protocol(setting):
    protocol = _draft(setting)

    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    assert protocol.number == f"IRB-{timezone.localdate().year}-0001"
    with pytest.raises(services.EthicsRefused):
        services.protocol_update_draft(protocol=protocol, by=setting["applicant"], items={"title": {"body": "x"}})
    assert protocol.versions.get().items.get(key="title").body == "内視鏡画像を用いた胃がん検出AIの開発"


def test_submit_by_someone_else_refused(setting):
    protocol = _draft(setting)

    with pytest.raises(services.EthicsRefused):
        services.protocol_submit(protocol=protocol, by=setting["head"])

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.DRAFT


def test_attachment_wrong_type_refused_with_reason(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.attachment_add(
            protocol=protocol, kind="other", by=setting["applicant"],
            upload=SimpleUploadedFile("evil.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf"),
        )

    assert "Only PDF, Word, Excel or PowerPoint" in refused.value.messages[0]
    assert protocol.versions.get().attachments.count() == 0
    assert AuditEvent.objects.count() == before


def test_attachment_too_large_refused(setting, monkeypatch):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )
    monkeypatch.setattr("portal.ethics.services.drafting.MAX_ATTACHMENT_BYTES", 10)

    with pytest.raises(ValidationError) as refused:
        services.attachment_add(
            protocol=protocol, kind="other", by=setting["applicant"],
            upload=SimpleUploadedFile("big.pdf", PDF, content_type="application/pdf"),
        )

    assert "larger than" in refused.value.messages[0]
    assert protocol.versions.get().attachments.count() == 0


def test_attachment_docx_recognised_by_content(setting):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )

    attachment = services.attachment_add(
        protocol=protocol, kind="information_sheet", by=setting["applicant"],
        upload=SimpleUploadedFile("説明文書.docx", buffer.getvalue()),
    )

    assert attachment.media_type.endswith("wordprocessingml.document")
    assert len(attachment.sha256) == 64


def test_return_for_completion_reopens_the_version(setting):
    protocol = _draft(setting)
    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    services.protocol_return_for_completion(
        protocol=protocol, reason="COI申告書を添付してください", by=setting["members"]["secretariat"].user
    )

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.RETURNED
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], items={"funding_coi": {"body": "なし"}})
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    assert protocol.number == f"IRB-{timezone.localdate().year}-0001"


# --- Review ------------------------------------------------------------------------------------


def test_review_assigns_voters_and_keeps_the_applicants_colleagues_without_conflict(setting):
    OrganizationMembershipFactory(user=setting["members"]["science"].user, organization=setting["university"])

    _protocol, review = _to_review(setting)

    assignments = {a.member.user.email: a for a in review.assignments.select_related("member__user")}
    assert set(assignments) == {f"{n}@irb.example.jp" for n in ("chair", "science", "law", "lay", "external")}
    # A colleague of the applicant takes part unless they declare a conflict (guideline; item 19).
    assert (assignments["science@irb.example.jp"].recused, assignments["science@irb.example.jp"].recusal_reason) == (False, "")
    assert [a.review for a in review_inbox(setting["members"]["law"].user)] == [review]


def test_review_applicant_on_the_committee_is_recused(setting):
    setting["applicant"] = setting["members"]["science"].user
    OrganizationMembershipFactory(user=setting["applicant"], organization=setting["university"])

    _protocol, review = _to_review(setting)

    assignment = review.assignments.get(member=setting["members"]["science"])
    assert (assignment.recused, assignment.recusal_reason) == (True, "applicant")


def test_review_member_named_in_item_2_rows_is_recused(setting):
    protocol = _draft(setting)
    lay = setting["members"]["lay"].user
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], organization_entries=[
        {"institution_name": "研究大学", "institution_role": "research_institution", "person_name": "申請者",
         "person_role": "site_pi", "user": setting["applicant"]},
        {"institution_name": "協力病院", "institution_role": "collaborating", "person_name": "一般 委員",
         "person_role": "co_investigator", "user": lay},
    ])
    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    review = services.review_open(protocol=protocol, mode="full_board", by=setting["members"]["secretariat"].user)

    assignment = review.assignments.get(member=setting["members"]["lay"])
    assert (assignment.recused, assignment.recusal_reason) == (True, "named in the protocol")


def test_quorum_met_when_every_member_belongs_to_the_applicants_institution(setting):
    for member in setting["members"].values():
        OrganizationMembershipFactory(user=member.user, organization=setting["university"])
    protocol, review = _to_review(setting)
    _attend_all(setting, review)

    assert review.assignments.filter(recused=True).count() == 0
    assert services.quorum_problems(review) == []
    decision = _approve(setting, review)

    assert decision.outcome == "approved"
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.APPROVED


def test_conflict_declared_recuses_member_drops_vote_and_breaks_quorum(setting):
    lay = setting["members"]["lay"]
    OrganizationMembershipFactory(user=lay.user, organization=setting["university"])
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)
    services.vote_cast(review=review, choice="approve", by=lay.user)

    declaration = services.conflict_declare(
        review=review, has_conflict=True, details="申請者の研究室と共同研究を行っている。", by=lay.user
    )

    assert (declaration.has_conflict, declaration.details) == (True, "申請者の研究室と共同研究を行っている。")
    assignment = review.assignments.get(member=lay)
    assert (assignment.recused, assignment.recusal_reason) == (True, "declared a conflict of interest")
    assert not review.votes.filter(member=lay).exists()
    assert "No lay member attended." in services.quorum_problems(review)
    event = AuditEvent.objects.filter(action="ethics.conflict_declared").get()
    assert event.details["has_conflict"] is True
    assert event.details["recused"] is True
    with pytest.raises(services.EthicsRefused, match="recused"):
        services.vote_cast(review=review, choice="approve", by=lay.user)


def test_conflict_declared_none_lifts_only_a_conflict_recusal(setting):
    lay = setting["members"]["lay"]
    _protocol, review = _to_review(setting)
    services.conflict_declare(review=review, has_conflict=True, details="親族が研究分担者である。", by=lay.user)

    declaration = services.conflict_declare(review=review, has_conflict=False, details="無視される", by=lay.user)

    assert (declaration.has_conflict, declaration.details) == (False, "")
    assert ConflictDeclaration.objects.filter(review=review).count() == 1
    assert review.assignments.get(member=lay).recused is False


def test_conflict_declared_none_keeps_the_applicants_recusal(setting):
    setting["applicant"] = setting["members"]["science"].user
    OrganizationMembershipFactory(user=setting["applicant"], organization=setting["university"])
    _protocol, review = _to_review(setting)

    services.conflict_declare(review=review, has_conflict=False, by=setting["applicant"])

    assignment = review.assignments.get(member=setting["members"]["science"])
    assert (assignment.recused, assignment.recusal_reason) == (True, "applicant")


def test_conflict_declared_without_details_refused_and_nothing_changes(setting):
    lay = setting["members"]["lay"]
    _protocol, review = _to_review(setting)

    with pytest.raises(ValidationError):
        services.conflict_declare(review=review, has_conflict=True, details=" ", by=lay.user)

    assert not ConflictDeclaration.objects.exists()
    assert review.assignments.get(member=lay).recused is False


def test_conflict_declared_by_non_member_refused(setting):
    _protocol, review = _to_review(setting)

    with pytest.raises(services.EthicsRefused):
        services.conflict_declare(review=review, has_conflict=False, by=setting["head"])

    assert not ConflictDeclaration.objects.exists()


def test_recused_member_cannot_vote(setting):
    _protocol, review = _to_review(setting)
    science = setting["members"]["science"].user
    services.conflict_declare(review=review, has_conflict=True, details="研究費を受けている。", by=science)

    with pytest.raises(services.EthicsRefused, match="recused"):
        services.vote_cast(review=review, choice="approve", by=setting["members"]["science"].user)

    assert review.votes.count() == 0


def test_vote_by_non_member_refused(setting):
    _protocol, review = _to_review(setting)

    with pytest.raises(services.EthicsRefused):
        services.vote_cast(review=review, choice="approve", by=setting["applicant"])

    assert review.votes.count() == 0


def test_vote_can_be_changed_until_decision(setting):
    _protocol, review = _to_review(setting)
    law = setting["members"]["law"].user

    services.vote_cast(review=review, choice="defer", reason="説明文書が不十分", by=law)
    services.vote_cast(review=review, choice="approve", by=law)

    assert list(review.votes.values_list("choice", flat=True)) == ["approve"]


def test_comment_on_item_visible_to_members(setting):
    _protocol, review = _to_review(setting)

    comment = services.comment_add(
        review=review, item_key="consent_procedure", body="オプトアウト文書の掲載場所を明記してください。",
        for_applicant=True, by=setting["members"]["lay"].user,
    )

    assert comment.item_key == "consent_procedure"
    with pytest.raises(ValidationError):
        services.comment_add(review=review, item_key="no_such_item", body="x", for_applicant=False,
                             by=setting["members"]["lay"].user)


def test_decision_without_quorum_refused_naming_rule(setting):
    protocol, review = _to_review(setting)
    voters = [setting["members"][n] for n in ("chair", "science", "law", "lay")]
    services.attendance_record(review=review, members=voters, by=setting["members"]["secretariat"].user)

    with pytest.raises(ValidationError) as refused:
        _approve(setting, review)

    assert refused.value.messages == ["The quorum is not met:", "At least 5 members must attend; 4 attended."]
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.UNDER_REVIEW
    assert not Decision.objects.exists()


def test_decision_quorum_does_not_count_recused_members(setting):
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)
    services.conflict_declare(review=review, has_conflict=True, details="利害関係あり", by=setting["members"]["lay"].user)

    with pytest.raises(ValidationError) as refused:
        _approve(setting, review)

    assert "No lay member attended." in refused.value.messages


def test_decision_only_by_chair(setting):
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)

    with pytest.raises(services.EthicsRefused):
        services.decision_record(
            review=review, outcome="approved", method="unanimous", reasons="妥当",
            approved_until=timezone.localdate(), by=setting["members"]["law"].user,
        )

    assert not Decision.objects.exists()


def test_expedited_decision_needs_no_attendance_and_is_reported_to_all(setting, mailoutbox, django_capture_on_commit_callbacks):
    protocol, review = _to_review(setting, mode="expedited")

    with django_capture_on_commit_callbacks(execute=True):
        _approve(setting, review)

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.APPROVED
    report = [m for m in mailoutbox if "expedited" in m.subject.lower() or "迅速" in m.subject]
    # One message per member, the secretariat included (each has its own inbox copy).
    assert len({address for message in report for address in message.to}) == 6
    assert all(len(message.to) == 1 for message in report)


def test_head_cannot_permit_what_the_committee_did_not_approve(setting):
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review, outcome="conditions", conditions="説明文書を修正すること")

    with pytest.raises(services.EthicsRefused, match="not approved"):
        services.head_decide(protocol=protocol, permitted=True, by=setting["head"])

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.CONDITIONS
    assert not hasattr(protocol.versions.get(), "head_decision")


def test_head_permit_in_wrong_state_refused_by_state_machine(setting):
    protocol = _draft(setting)

    with pytest.raises((services.EthicsRefused, TransitionNotAllowed)):
        services.head_decide(protocol=protocol, permitted=False, reasons="不許可", by=setting["head"])

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.DRAFT


def test_only_the_head_of_the_institution_can_permit(setting):
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review)
    other_head = UserFactory()
    OrganizationMembershipFactory(user=other_head, role="head")

    with pytest.raises(services.EthicsRefused):
        services.head_decide(protocol=protocol, permitted=True, by=other_head)

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.APPROVED


def test_full_path_to_active_and_data_flow(setting):
    protocol, review = _to_review(setting)
    assert protocol_data_flow(protocol).allowed is False
    for name in ("chair", "science", "law", "lay", "external"):
        services.vote_cast(review=review, choice="conditions", reason="説明文書の修正", by=setting["members"][name].user)
    _attend_all(setting, review)
    _approve(setting, review, outcome="conditions", conditions="説明文書を修正すること")
    services.conditions_answer(protocol=protocol, answer="修正しました", by=setting["applicant"])
    services.conditions_verify(protocol=protocol, accepted=True, by=setting["members"]["chair"].user)

    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])

    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.ACTIVE
    assert protocol.approved_until == timezone.localdate() + timedelta(days=365)
    assert protocol_data_flow(protocol).allowed is True
    actions = list(
        AuditEvent.objects.filter(target_type="ethics.protocol").order_by("id").values_list("action", flat=True)
    )
    assert actions[-5:] == [
        "ethics.attendance_recorded", "ethics.decision_recorded", "ethics.conditions_answered",
        "ethics.conditions_verified", "ethics.head_permitted",
    ]


def _active(setting):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


def test_data_flow_stops_on_suspension_and_resumes(setting):
    protocol = _active(setting)

    services.protocol_suspend(protocol=protocol, reason="重大な不適合の調査", by=setting["members"]["chair"].user)
    protocol.refresh_from_db()
    assert protocol_data_flow(protocol).allowed is False

    services.protocol_resume(protocol=protocol, by=setting["head"])
    protocol.refresh_from_db()
    assert protocol_data_flow(protocol).allowed is True


def test_data_flow_stops_when_approval_lapses(setting):
    protocol = _active(setting)

    later = protocol.approved_until + timedelta(days=1)

    assert protocol_data_flow(protocol, today=later).allowed is False
    assert protocol_data_flow(protocol, today=protocol.approved_until).allowed is True


def test_major_amendment_pauses_data_flow_minor_does_not(setting):
    protocol = _active(setting)

    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="連絡先の変更", by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.AMENDMENT_REVIEW
    assert protocol_data_flow(protocol).allowed is True
    services.minor_amendment_acknowledge(protocol=protocol, by=setting["members"]["secretariat"].user)
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.ACTIVE

    services.amendment_start(protocol=protocol, kind="major_amendment", summary="対象疾患の追加", by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    assert protocol_data_flow(protocol).allowed is False
    assert [v.number for v in protocol.versions.all()] == [1, 2, 3]
    assert protocol.versions.get(number=3).kind == ProtocolVersion.Kind.MAJOR_AMENDMENT
    review = services.review_open(protocol=protocol, mode="full_board", by=setting["members"]["secretariat"].user)
    assert review.type == Review.Type.AMENDMENT


def test_visibility_applicant_sees_own_member_sees_committee(setting):
    mine = _draft(setting)
    services.protocol_submit(protocol=mine, by=setting["applicant"])
    other_committee_member = UserFactory()
    from tests.factories.ethics import CommitteeMembershipFactory

    CommitteeMembershipFactory(user=other_committee_member)  # a member of another committee
    stranger_draft = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="別の研究",
        by=setting["head"],
    )

    assert list(protocols_visible_to(setting["applicant"])) == [mine]
    assert set(protocols_visible_to(setting["members"]["law"].user)) == {mine}  # drafts stay private
    assert list(protocols_visible_to(other_committee_member)) == []
    assert stranger_draft in protocols_visible_to(setting["head"])


def test_deferred_protocol_is_revised_into_a_new_version_and_reviewed_again(setting):
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review, outcome="deferred")

    with pytest.raises(services.EthicsRefused):
        services.protocol_submit(protocol=protocol, by=setting["applicant"])  # v1 is frozen

    version = services.protocol_revise(protocol=protocol, summary="説明文書を改訂", by=setting["applicant"])
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], items={"funding_coi": {"body": "改訂"}})
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    second = services.review_open(protocol=protocol, mode="full_board", by=setting["members"]["secretariat"].user)

    assert version.number == 2
    assert second.version == version
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.UNDER_REVIEW


def test_withdrawn_draft_cannot_be_edited(setting):
    protocol = _draft(setting)
    services.protocol_withdraw(protocol=protocol, by=setting["applicant"])

    with pytest.raises(services.EthicsRefused):
        services.protocol_update_draft(protocol=protocol, by=setting["applicant"], items={"title": {"body": "x"}})

    assert protocol.versions.get().items.get(key="title").body == "内視鏡画像を用いた胃がん検出AIの開発"


def test_named_researcher_is_recused(setting):
    protocol = _draft(setting)
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], named_researchers=[setting["members"]["lay"].user]
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    review = services.review_open(protocol=protocol, mode="full_board", by=setting["members"]["secretariat"].user)

    assignment = review.assignments.get(member=setting["members"]["lay"])
    assert (assignment.recused, assignment.recusal_reason) == (True, "named in the protocol")


def test_periodic_report_moves_the_due_date_and_is_acknowledged(setting):
    protocol = _active(setting)
    today = timezone.localdate()
    assert protocol.periodic_report_due == today.replace(year=today.year + 1)

    period_end = today - timedelta(days=10)
    report = services.periodic_report_submit(
        protocol=protocol, period_end=period_end, subjects_enrolled=1200, body="画像12,000件を収集した。",
        by=setting["applicant"],
    )
    services.periodic_report_acknowledge(report=report, by=setting["members"]["secretariat"].user)

    protocol.refresh_from_db()
    report.refresh_from_db()
    assert protocol.periodic_report_due == services.one_year_after(period_end)
    assert report.acknowledged_by == setting["members"]["secretariat"].user
    with pytest.raises(ValidationError):
        services.periodic_report_submit(
            protocol=protocol, period_end=period_end, subjects_enrolled=1, body="重複", by=setting["applicant"]
        )
    assert protocol.periodic_reports.count() == 1


def test_periodic_report_refused_before_permission(setting):
    protocol = _draft(setting)

    with pytest.raises(services.EthicsRefused):
        services.periodic_report_submit(
            protocol=protocol, period_end=timezone.localdate(), subjects_enrolled=0, body="x", by=setting["applicant"]
        )

    assert not protocol.periodic_reports.exists()


def test_one_year_after_leap_day():
    assert services.one_year_after(date(2028, 2, 29)) == date(2029, 2, 28)
    assert services.one_year_after(date(2026, 11, 27)) == date(2027, 11, 27)


def test_major_amendment_must_go_to_the_full_board(setting):
    protocol = _active(setting)
    services.amendment_start(protocol=protocol, kind="major_amendment", summary="対象の拡大", by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])

    with pytest.raises(ValidationError) as refused:
        services.review_open(
            protocol=protocol, mode="expedited", expedited_ground="minor_change",
            by=setting["members"]["secretariat"].user,
        )

    assert refused.value.message_dict == {"mode": ["A major amendment is reviewed by the full board."]}
    assert not Review.objects.filter(version__number=2).exists()


def test_unknown_modality_refused(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )

    with pytest.raises(ValidationError):
        services.protocol_update_draft(protocol=protocol, by=setting["applicant"], fields={"modalities": ["mri-3t"]})

    assert protocol.versions.get().modalities == []
