"""REGULATION.md a1 and a2 in the protocol and its review record (issue 12, items 17 and 18).

Item ② as rows (institution × person × role) with the lead PI of a multi-site study, the
collection-and-provision body's protocol as its own kind, the researchers' explanation, the day
the opinion reached the head, and members' conflict-of-interest declarations.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.documents import decision_notice_issue
from portal.ethics.items import COLLECTION_PROVISION_ITEMS
from portal.ethics.models import (
    ConflictDeclaration,
    Decision,
    OrganizationEntry,
    Protocol,
    ProtocolItem,
)
from tests.ethics.test_documents import _stored, _text
from tests.ethics.test_services import _approve, _attend_all, _draft, _to_review
from tests.ethics.test_services import setting as setting
from tests.factories import give_totp

LEAD = {"institution_name": "中央大学", "institution_role": "research_institution", "person_name": "代表 太郎",
        "person_role": "lead_pi"}
SITE = {"institution_name": "研究大学", "institution_role": "research_institution", "person_name": "責任 花子",
        "person_role": "site_pi"}
PROVIDER = {"institution_name": "提供病院", "institution_role": "provider_only", "person_name": "提供 次郎",
            "person_role": "contact"}


@pytest.fixture(autouse=True)
def _logins(setting):  # type: ignore[no-untyped-def]
    give_totp(setting["applicant"])
    give_totp(setting["head"])


def _rows(version) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    return list(version.organization_entries.values_list(
        "institution_name", "institution_role", "person_name", "person_role"))


# --- Item ②: rows, lead PI ----------------------------------------------------------------------


def test_protocol_create_starts_item_2_with_the_applicant_as_site_pi(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="題名", by=setting["applicant"]
    )

    [entry] = protocol.versions.get().organization_entries.all()
    assert (entry.institution_name, entry.institution_role, entry.person_role, entry.user) == (
        "研究大学", "research_institution", "site_pi", setting["applicant"])


def test_multi_site_without_lead_pi_refused_at_submission_and_nothing_changes(setting):
    protocol = _draft(setting)
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], fields={"multi_site": True})

    with pytest.raises(ValidationError) as refused:
        services.protocol_submit(protocol=protocol, by=setting["applicant"])

    assert refused.value.messages == ["Multi-site study: name the lead principal investigator in item ②"]
    protocol.refresh_from_db()
    assert (protocol.status, protocol.number) == ("draft", None)


def test_multi_site_with_lead_pi_distinct_from_site_pi_submits(setting):
    protocol = _draft(setting)
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"multi_site": True},
        organization_entries=[LEAD, SITE, PROVIDER],
    )

    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    protocol.refresh_from_db()
    assert protocol.status == "submitted"
    assert _rows(protocol.versions.get()) == [
        ("中央大学", "research_institution", "代表 太郎", "lead_pi"),
        ("研究大学", "research_institution", "責任 花子", "site_pi"),
        ("提供病院", "provider_only", "提供 次郎", "contact"),
    ]


def test_two_lead_pis_refused_and_rows_unchanged(setting):
    protocol = _draft(setting)
    before = _rows(protocol.versions.get())

    with pytest.raises(ValidationError):
        services.protocol_update_draft(protocol=protocol, by=setting["applicant"], organization_entries=[LEAD, LEAD])

    assert _rows(protocol.versions.get()) == before


def test_pi_at_a_provider_only_institution_refused_and_rows_unchanged(setting):
    protocol = _draft(setting)
    before = _rows(protocol.versions.get())

    with pytest.raises(ValidationError):
        services.protocol_update_draft(
            protocol=protocol, by=setting["applicant"], organization_entries=[PROVIDER | {"person_role": "site_pi"}]
        )

    assert _rows(protocol.versions.get()) == before


def test_no_rows_refused_at_submission(setting):
    protocol = _draft(setting)
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], organization_entries=[])

    with pytest.raises(ValidationError) as refused:
        services.protocol_submit(protocol=protocol, by=setting["applicant"])

    assert refused.value.messages == [
        "② Research organisation (institutions, researchers and providers of existing data): "
        "name at least one institution and person"
    ]


def test_amendment_copies_item_2_rows(setting):
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])

    version = services.amendment_start(protocol=protocol, kind="minor_amendment", summary="分担者追加", by=setting["applicant"])

    assert _rows(version) == _rows(protocol.versions.get(number=1))
    assert version.organization_entries.get().user == setting["applicant"]


def test_edit_page_saves_item_2_rows_and_pages_show_them(client, setting):
    protocol = _draft(setting)
    client.force_login(setting["applicant"])
    page = client.get(reverse("ethics:protocol_edit", args=[protocol.pk]))
    assert 'data-testid="organization-formset"' in page.content.decode()
    data = {
        "consent_procedure": "opt_out", "guideline_version": "2023-07-01", "invasiveness": "none",
        "review_mode": "individual", "company_involvement": "none", "multi_site": "on",
        "org-TOTAL_FORMS": "3", "org-INITIAL_FORMS": "1", "org-MIN_NUM_FORMS": "0", "org-MAX_NUM_FORMS": "1000",
        "org-0-institution_name": "研究大学", "org-0-institution_role": "research_institution",
        "org-0-person_name": "責任 花子", "org-0-person_role": "site_pi",
        "org-0-user_email": setting["applicant"].email,
        "org-1-institution_name": "中央大学", "org-1-institution_role": "collaborating",
        "org-1-person_name": "代表 太郎", "org-1-person_role": "lead_pi",
        "org-1-user_email": setting["members"]["lay"].user.email,
    }

    response = client.post(reverse("ethics:protocol_edit", args=[protocol.pk]), data)

    assert response.status_code == 302
    version = protocol.versions.get()
    assert _rows(version) == [
        ("研究大学", "research_institution", "責任 花子", "site_pi"),
        ("中央大学", "collaborating", "代表 太郎", "lead_pi"),
    ]
    assert version.organization_entries.get(person_role="lead_pi").user == setting["members"]["lay"].user
    detail = client.get(reverse("ethics:protocol_detail", args=[protocol.pk])).content.decode()
    assert 'data-testid="organization-entries"' in detail
    assert "代表 太郎" in detail
    assert 'data-person-role="lead_pi"' in detail


def test_edit_page_unknown_email_in_item_2_shows_error_and_saves_nothing(client, setting):
    protocol = _draft(setting)
    before = _rows(protocol.versions.get())
    client.force_login(setting["applicant"])
    data = {
        "consent_procedure": "opt_out", "guideline_version": "2023-07-01", "invasiveness": "none",
        "review_mode": "individual", "company_involvement": "none",
        "org-TOTAL_FORMS": "1", "org-INITIAL_FORMS": "0", "org-MIN_NUM_FORMS": "0", "org-MAX_NUM_FORMS": "1000",
        "org-0-institution_name": "研究大学", "org-0-institution_role": "research_institution",
        "org-0-person_name": "誰か", "org-0-person_role": "co_investigator", "org-0-user_email": "nobody@example.jp",
    }

    response = client.post(reverse("ethics:protocol_edit", args=[protocol.pk]), data)

    assert response.status_code == 200
    assert list(response.context["organization_formset"].forms[0].errors) == ["user_email"]
    assert _rows(protocol.versions.get()) == before


def test_decision_notice_names_item_2_rows_and_lead_pi(setting):
    protocol = _draft(setting)
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"multi_site": True}, organization_entries=[LEAD, SITE]
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    review = services.review_open(protocol=protocol, mode="full_board", by=setting["members"]["secretariat"].user)
    _attend_all(setting, review)
    decision = _approve(setting, review)

    text = _text(_stored(decision_notice_issue(decision=decision, by=None)))

    for expected in ("研究代表者", "代表太郎", "中央大学", "研究責任者", "責任花子", "研究機関"):
        assert expected in text, expected


def test_api_detail_shows_item_2_rows(client, setting):
    protocol = _draft(setting)
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], organization_entries=[LEAD, SITE])
    client.force_login(setting["applicant"])

    version = client.get(f"/api/v1/ethics/protocols/{protocol.pk}/").json()["versions"][0]

    assert version["organization_entries"] == [
        {"institution_name": "中央大学", "institution_role": "research_institution", "person_name": "代表 太郎",
         "person_role": "lead_pi"},
        {"institution_name": "研究大学", "institution_role": "research_institution", "person_name": "責任 花子",
         "person_role": "site_pi"},
    ]


# --- The collection-and-provision body's protocol ------------------------------------------------


def test_collection_provision_protocol_has_its_own_items_and_requires_them(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="学会画像データベース",
        by=setting["applicant"], kind=Protocol.Kind.COLLECTION_PROVISION,
    )
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "written"})

    keys = list(ProtocolItem.objects.filter(version__protocol=protocol).order_by("id").values_list("key", flat=True))
    assert keys == [spec.key for spec in COLLECTION_PROVISION_ITEMS]
    with pytest.raises(ValidationError) as refused:
        services.protocol_submit(protocol=protocol, by=setting["applicant"])
    messages = refused.value.messages
    assert "⑤ Kinds of specimens and information collected and provided: required" in messages
    assert "⑩ Handling after the collection and provision end: required" in messages
    assert "⑬ Costs to subjects or rewards: describe it, or say why it does not apply" in messages
    assert not any("Policy for selecting research subjects" in m for m in messages)
    assert len(messages) == 13  # items ③-⑮ (② has the applicant's row)


def test_collection_provision_protocol_refuses_research_items(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="学会画像データベース",
        by=setting["applicant"], kind=Protocol.Kind.COLLECTION_PROVISION,
    )

    with pytest.raises(ValidationError):
        services.protocol_update_draft(
            protocol=protocol, by=setting["applicant"], items={"subject_selection": {"body": "x"}}
        )

    assert not ProtocolItem.objects.filter(version__protocol=protocol, key="subject_selection").exists()


def test_collection_provision_protocol_complete_submits(setting):
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title="学会画像データベース",
        by=setting["applicant"], kind=Protocol.Kind.COLLECTION_PROVISION,
    )
    items = {spec.key: {"body": f"{spec.label}の記載"} for spec in COLLECTION_PROVISION_ITEMS if spec.key != "title"}
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "written"}, items=items
    )

    services.protocol_submit(protocol=protocol, by=setting["applicant"])

    protocol.refresh_from_db()
    assert (protocol.kind, protocol.status) == ("collection_provision", "submitted")


def test_create_page_makes_a_collection_provision_protocol(client, setting):
    client.force_login(setting["applicant"])

    response = client.post(reverse("ethics:protocol_create"), {
        "committee": setting["committee"].pk, "institution": setting["university"].pk,
        "title": "学会画像データベース", "kind": "collection_provision",
    })

    protocol = Protocol.objects.get()
    assert response.status_code == 302
    assert protocol.kind == "collection_provision"
    edit = client.get(reverse("ethics:protocol_edit", args=[protocol.pk])).content.decode()
    assert 'data-item="cp_data_types"' in edit
    assert 'data-item="subject_selection"' not in edit


# --- The review record (a2) ------------------------------------------------------------------------


def test_explanation_recorded_by_secretariat_and_shown_to_members(client, setting):
    protocol, review = _to_review(setting)
    client.force_login(setting["members"]["secretariat"].user)

    response = client.post(reverse("ethics:review_explanation", args=[protocol.pk]),
                           {"explanation": "研究責任者が匿名化の手順を説明し、質疑に応じた。"})

    assert response.status_code == 302
    review.refresh_from_db()
    assert review.pi_explanation == "研究責任者が匿名化の手順を説明し、質疑に応じた。"
    assert AuditEvent.objects.filter(action="ethics.explanation_recorded").count() == 1
    client.force_login(setting["members"]["law"].user)
    page = client.get(reverse("ethics:review_detail", args=[protocol.pk])).content.decode()
    assert "研究責任者が匿名化の手順を説明し、質疑に応じた。" in page


def test_explanation_by_member_forbidden_and_nothing_changes(client, setting):
    protocol, review = _to_review(setting)
    client.force_login(setting["members"]["law"].user)

    response = client.post(reverse("ethics:review_explanation", args=[protocol.pk]), {"explanation": "説明"})

    assert response.status_code == 403
    review.refresh_from_db()
    assert review.pi_explanation == ""


def test_notified_to_head_stamped_when_the_notice_is_issued(setting):
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review)
    assert Decision.objects.get().notified_to_head_on is None

    decision_notice_issue(decision=decision, by=None)

    assert Decision.objects.get().notified_to_head_on == timezone.localdate()


def test_notified_to_head_set_by_secretariat_is_kept_when_the_notice_is_issued(client, setting):
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review)
    today = timezone.localdate()
    client.force_login(setting["members"]["secretariat"].user)

    response = client.post(reverse("ethics:review_notified_to_head", args=[protocol.pk]), {"on": today.isoformat()})

    assert response.status_code == 302
    decision_notice_issue(decision=Decision.objects.get(), by=None)
    assert Decision.objects.get().notified_to_head_on == today
    event = AuditEvent.objects.filter(action="ethics.opinion_notified_to_head").get()
    assert event.details["on"] == today.isoformat()
    assert decision.pk == Decision.objects.get().pk


def test_notified_to_head_in_the_future_refused_and_nothing_changes(setting):
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review)

    with pytest.raises(ValidationError):
        services.decision_notified_to_head_set(
            decision=decision, on=timezone.localdate() + timedelta(days=1), by=setting["members"]["secretariat"].user
        )

    assert Decision.objects.get().notified_to_head_on is None


def test_notified_to_head_by_member_refused_and_nothing_changes(setting):
    _protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review)

    with pytest.raises(services.EthicsRefused):
        services.decision_notified_to_head_set(decision=decision, on=timezone.localdate(), by=setting["members"]["law"].user)

    assert Decision.objects.get().notified_to_head_on is None


def test_conflict_declared_on_the_review_page_and_shown_to_the_chair_only(client, setting):
    protocol, review = _to_review(setting)
    law = setting["members"]["law"].user
    client.force_login(law)

    response = client.post(reverse("ethics:review_conflict", args=[protocol.pk]),
                           {"has_conflict": "yes", "details": "申請者と共同研究を行っている。"})

    assert response.status_code == 302
    declaration = ConflictDeclaration.objects.get()
    assert (declaration.member.user, declaration.has_conflict) == (law, True)
    assert review.assignments.get(member__user=law).recused is True
    own_page = client.get(reverse("ethics:review_detail", args=[protocol.pk]))
    assert own_page.context["conflict_declarations"] is None
    assert 'data-testid="own-declaration"' in own_page.content.decode()
    client.force_login(setting["members"]["chair"].user)
    chair_page = client.get(reverse("ethics:review_detail", args=[protocol.pk]))
    assert [d.details for d in chair_page.context["conflict_declarations"]] == ["申請者と共同研究を行っている。"]
    assert 'data-conflict="yes"' in chair_page.content.decode()


def test_conflict_declared_with_blank_details_shows_error_and_records_nothing(client, setting):
    protocol, review = _to_review(setting)
    client.force_login(setting["members"]["law"].user)

    response = client.post(reverse("ethics:review_conflict", args=[protocol.pk]), {"has_conflict": "yes", "details": ""})

    assert response.status_code == 200
    assert list(response.context["conflict_form"].errors) == ["details"]
    assert not ConflictDeclaration.objects.exists()
    assert review.assignments.filter(recused=True).count() == 0


def test_api_shows_review_record_fields_and_declarations_to_the_committee_only(client, setting):
    protocol, review = _to_review(setting)
    services.review_explanation_record(review=review, explanation="説明と質疑", by=setting["members"]["secretariat"].user)
    services.conflict_declare(review=review, has_conflict=False, by=setting["members"]["law"].user)
    _attend_all(setting, review)
    _approve(setting, review)
    services.decision_notified_to_head_set(
        decision=Decision.objects.get(), on=timezone.localdate(), by=setting["members"]["secretariat"].user
    )
    url = f"/api/v1/ethics/protocols/{protocol.pk}/"

    client.force_login(setting["members"]["chair"].user)
    committee_view = client.get(url).json()["versions"][0]["review"]
    client.force_login(setting["applicant"])
    applicant_view = client.get(url).json()["versions"][0]["review"]

    assert committee_view["pi_explanation"] == "説明と質疑"
    assert committee_view["decision"]["notified_to_head_on"] == timezone.localdate().isoformat()
    assert [(d["member"], d["has_conflict"], d["details"]) for d in committee_view["conflict_declarations"]] == [
        (setting["members"]["law"].user.email, False, "")]
    assert applicant_view["conflict_declarations"] == []
    assert applicant_view["decision"]["notified_to_head_on"] == timezone.localdate().isoformat()


def test_organization_entry_constraint_one_lead_pi(setting):
    protocol = _draft(setting)
    version = protocol.versions.get()
    OrganizationEntry.objects.create(version=version, **LEAD)

    from django.db import IntegrityError, transaction
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationEntry.objects.create(version=version, **LEAD)

    assert version.organization_entries.filter(person_role="lead_pi").count() == 1


# --- 重大な不適合の報告 --------------------------------------------------------------------------------


def _running(setting):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


@pytest.mark.parametrize(("who", "filed_as"), [("applicant", "principal_investigator"), ("head", "head")])
def test_noncompliance_reported_from_the_page_and_answered_by_the_chair(client, setting, who, filed_as):
    protocol = _running(setting)
    client.force_login(setting[who])

    response = client.post(reverse("ethics:noncompliance_report", args=[protocol.pk]),
                           {"body": "同意撤回者の画像を提供していたことが判明した。提供を停止した。"})

    assert response.status_code == 302
    report = protocol.noncompliance_reports.get()
    assert (report.filed_as, report.filed_by, report.opinion_at) == (filed_as, setting[who], None)
    client.force_login(setting["members"]["chair"].user)
    page = client.get(reverse("ethics:protocol_detail", args=[protocol.pk])).content.decode()
    assert 'data-testid="noncompliance-opinion-form"' in page

    client.post(reverse("ethics:noncompliance_opinion", args=[protocol.pk, report.pk]),
                {"opinion": "再発防止策を確認した。研究の継続は妥当。"})

    report.refresh_from_db()
    assert (report.opinion, report.opinion_by) == ("再発防止策を確認した。研究の継続は妥当。", setting["members"]["chair"].user)
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="ethics.noncompliance").order_by("id")] == [
        "ethics.noncompliance_reported", "ethics.noncompliance_opinion_recorded"]
    client.force_login(setting["applicant"])
    api = client.get(f"/api/v1/ethics/protocols/{protocol.pk}/").json()
    assert [(r["filed_as"], r["opinion"]) for r in api["noncompliance_reports"]] == [
        (filed_as, "再発防止策を確認した。研究の継続は妥当。")]


def test_noncompliance_report_by_member_forbidden_and_nothing_filed(client, setting):
    protocol = _running(setting)
    client.force_login(setting["members"]["law"].user)

    response = client.post(reverse("ethics:noncompliance_report", args=[protocol.pk]), {"body": "報告"})

    assert response.status_code == 403
    assert not protocol.noncompliance_reports.exists()


def test_noncompliance_report_on_a_draft_refused_and_nothing_filed(setting):
    protocol = _draft(setting)

    with pytest.raises(services.EthicsRefused):
        services.noncompliance_report_file(protocol=protocol, body="報告", by=setting["applicant"])

    assert not protocol.noncompliance_reports.exists()


def test_noncompliance_opinion_by_member_refused_and_report_unanswered(setting):
    protocol = _running(setting)
    report = services.noncompliance_report_file(protocol=protocol, body="報告", by=setting["applicant"])

    with pytest.raises(services.EthicsRefused):
        services.noncompliance_opinion_record(report=report, opinion="意見", by=setting["members"]["law"].user)

    report.refresh_from_db()
    assert (report.opinion, report.opinion_at) == ("", None)


def test_noncompliance_opinion_given_twice_refused(setting):
    protocol = _running(setting)
    report = services.noncompliance_report_file(protocol=protocol, body="報告", by=setting["applicant"])
    chair = setting["members"]["chair"].user
    services.noncompliance_opinion_record(report=report, opinion="第一の意見", by=chair)

    with pytest.raises(services.EthicsRefused):
        services.noncompliance_opinion_record(report=report, opinion="第二の意見", by=chair)

    report.refresh_from_db()
    assert report.opinion == "第一の意見"


def test_public_summary_counts_noncompliance_opinions_as_their_review_type(client, setting):
    protocol = _running(setting)
    report = services.noncompliance_report_file(protocol=protocol, body="報告", by=setting["head"])
    services.noncompliance_opinion_record(report=report, opinion="意見", by=setting["members"]["chair"].user)

    response = client.get(f"/committees/{setting['committee'].slug}/summary/{timezone.localdate().year}/")

    assert {row.value: row.count for row in response.context["by_type"]}["serious_noncompliance"] == 1
