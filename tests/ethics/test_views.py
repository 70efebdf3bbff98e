"""The ethics review pages: who may see and do what, each form's success and bad input, languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import (
    Attendance,
    Decision,
    HeadDecision,
    ItemComment,
    Protocol,
    ProtocolStatus,
    ProtocolVersion,
    Review,
    Vote,
)
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb", name_ja="研究大学倫理審査委員会")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 責任者")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp", full_name="機関 長")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _user(setting, name):  # type: ignore[no-untyped-def]
    return setting["members"][name].user


def _complete_items() -> dict[str, dict[str, str]]:
    items = {}
    for spec in PROTOCOL_ITEMS:
        if spec.always_required:
            items[spec.key] = {"body": f"{spec.key} の記載"}
        else:
            items[spec.key] = {"not_applicable_reason": "侵襲を伴わない観察研究のため該当しない"}
    items["title"] = {"body": TITLE}
    return items


def _draft(setting, complete=True):  # type: ignore[no-untyped-def]
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title=TITLE, by=setting["applicant"]
    )
    if complete:
        services.protocol_update_draft(
            protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "written"},
            items=_complete_items(),
        )
    return protocol


def _submitted(setting):  # type: ignore[no-untyped-def]
    protocol = _draft(setting)
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    return protocol


def _under_review(setting, mode="expedited"):  # type: ignore[no-untyped-def]
    protocol = _submitted(setting)
    review = services.review_open(
        protocol=protocol, mode=mode, by=_user(setting, "secretariat"),
        expedited_ground="no_invasion" if mode == "expedited" else "",
    )
    return protocol, review


def _approved(setting, outcome="approved", **extra):  # type: ignore[no-untyped-def]
    protocol, review = _under_review(setting)
    services.decision_record(
        review=review, outcome=outcome, method="unanimous", reasons="妥当である。",
        approved_until=timezone.localdate() + timedelta(days=365), by=_user(setting, "chair"), **extra,
    )
    protocol.refresh_from_db()
    return protocol, review


def _active(setting):  # type: ignore[no-untyped-def]
    protocol, _review = _approved(setting)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    # These tests assert the English source messages; the Japanese pages are checked below.
    client.cookies["django_language"] = "en"


def _url(name, protocol, *args):  # type: ignore[no-untyped-def]
    return reverse(f"ethics:{name}", args=[protocol.pk, *args])


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def _status(protocol) -> str:  # type: ignore[no-untyped-def]
    protocol.refresh_from_db()
    return protocol.status


# --- Who may see what ----------------------------------------------------------------------------


def test_protocol_list_anonymous_redirected_to_login(client):
    response = client.get("/ethics/protocols/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/ethics/protocols/"


@pytest.mark.parametrize("page", ["protocol_detail", "protocol_edit", "version_diff", "review_detail"])
def test_protocol_pages_outsider_gets_404(client, setting, outsider, page):
    protocol, _review = _under_review(setting)
    client.force_login(outsider)

    assert client.get(_url(page, protocol)).status_code == 404


def test_protocol_detail_unsubmitted_draft_hidden_from_committee(client, setting):
    protocol = _draft(setting)
    client.force_login(_user(setting, "chair"))

    assert client.get(_url("protocol_detail", protocol)).status_code == 404


@pytest.mark.parametrize(
    ("who", "page"),
    [
        ("chair", "protocol_edit"),
        ("head", "protocol_edit"),
        ("applicant", "review_detail"),
        ("head", "review_detail"),
    ],
)
def test_protocol_pages_wrong_role_forbidden(client, setting, who, page):
    protocol, _review = _under_review(setting)
    user = setting[who] if who in setting else _user(setting, who)
    client.force_login(user)

    assert client.get(_url(page, protocol)).status_code == 403


def test_inbox_without_committee_role_forbidden(client, setting):
    client.force_login(setting["applicant"])

    assert client.get(reverse("ethics:inbox")).status_code == 403


def test_secretariat_queue_plain_member_forbidden(client, setting):
    client.force_login(_user(setting, "law"))

    assert client.get(reverse("ethics:secretariat_queue")).status_code == 403


def test_head_queue_without_head_role_forbidden(client, setting):
    client.force_login(setting["applicant"])

    assert client.get(reverse("ethics:head_queue")).status_code == 403


def test_review_decision_by_member_forbidden_and_nothing_recorded(client, setting):
    protocol, review = _under_review(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("review_decision", protocol), {
        "outcome": "approved", "method": "unanimous", "reasons": "妥当", "approved_until": "2030-01-01",
    })

    assert response.status_code == 403
    assert not Decision.objects.filter(review=review).exists()
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


def test_head_decide_by_applicant_forbidden_and_nothing_recorded(client, setting):
    protocol, _review = _approved(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("head_decide", protocol), {"permitted": "yes"})

    assert response.status_code == 403
    assert not HeadDecision.objects.exists()
    assert _status(protocol) == ProtocolStatus.APPROVED


# --- Applicant: list, create, edit, attach, submit ------------------------------------------------


def test_protocol_list_shows_own_protocols_in_fixed_queries(client, setting, django_assert_num_queries):
    submitted = _submitted(setting)
    draft = _draft(setting, complete=False)
    _draft(setting, complete=False)
    other = UserFactory()
    OrganizationMembershipFactory(user=other, organization=setting["university"])
    services.protocol_create(committee=setting["committee"], institution=setting["university"],
                             title="他人の研究", by=other)
    client.force_login(setting["applicant"])

    # session, user, three role lookups, and one query for the protocols with their titles
    with django_assert_num_queries(6):
        response = client.get(reverse("ethics:protocol_list"))

    protocols = list(response.context["protocols"])
    assert [p.pk for p in protocols][-2:] == [draft.pk, submitted.pk]
    assert len(protocols) == 3
    assert protocols[-1].title == TITLE
    assert protocols[-1].number == f"IRB-{timezone.localdate().year}-0001"
    assert "他人の研究" not in response.content.decode()
    assert 'data-status="submitted"' in response.content.decode()


def test_protocol_create_makes_draft_and_opens_editor(client, setting):
    client.force_login(setting["applicant"])

    response = client.post(reverse("ethics:protocol_create"), {
        "committee": setting["committee"].pk, "institution": setting["university"].pk, "title": TITLE,
    })

    protocol = Protocol.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _url("protocol_edit", protocol)
    assert protocol.principal_investigator == setting["applicant"]
    assert protocol.versions.get().items.get(key="title").body == TITLE


def test_protocol_create_blank_title_shows_error_and_creates_nothing(client, setting):
    client.force_login(setting["applicant"])

    response = client.post(reverse("ethics:protocol_create"), {
        "committee": setting["committee"].pk, "institution": setting["university"].pk, "title": "   ",
    })

    assert response.status_code == 200
    assert response.context["form"].errors == {"title": ["This field is required."]}
    assert Protocol.objects.count() == 0


def test_protocol_create_foreign_institution_refused_and_creates_nothing(client, setting):
    client.force_login(setting["applicant"])
    elsewhere = OrganizationFactory()

    response = client.post(reverse("ethics:protocol_create"), {
        "committee": setting["committee"].pk, "institution": elsewhere.pk, "title": TITLE,
    })

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["institution"]
    assert Protocol.objects.count() == 0


def _edit_payload(protocol, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "change_summary": "", "guideline_version": "2023-07-01", "invasiveness": "none",
        "uses_existing_data": "on", "sensitive_personal_info": "on", "review_mode": "individual",
        "foreign_country": "", "company_involvement": "none", "consent_procedure": "written",
        "justification_minimal_risk": "", "justification_no_disadvantage": "",
        "justification_impracticable": "", "justification_social_importance": "",
    }
    for key, values in _complete_items().items():
        data[f"item_{key}_body"] = values.get("body", "")
        data[f"item_{key}_not_applicable_reason"] = values.get("not_applicable_reason", "")
    data.update(overrides)
    return data


def test_protocol_edit_page_shows_every_item_with_marker(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.get(_url("protocol_edit", protocol))

    body = response.content.decode()
    assert response.status_code == 200
    for spec in PROTOCOL_ITEMS:
        assert f'name="item_{spec.key}_body"' in body
        assert spec.marker in body
    assert len(re.findall(r'name="item_\w+_not_applicable_reason"', body)) == 10  # items ⑯-㉕


def test_protocol_edit_saves_fields_and_items(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_edit", protocol), _edit_payload(
        protocol, item_purpose_significance_body="胃がんの早期発見", item_proxy_consent_not_applicable_reason="成人のみ",
    ))

    assert response.status_code == 302
    version = protocol.versions.get()
    assert version.consent_procedure == "written"
    assert version.items.get(key="purpose_significance").body == "胃がんの早期発見"
    assert version.items.get(key="proxy_consent").not_applicable_reason == "成人のみ"


def test_protocol_edit_saves_modalities_societies_and_named_researchers(client, setting):
    from tests.factories import SocietyFactory

    protocol = _draft(setting, complete=False)
    jsp = SocietyFactory(slug="jsp")
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_edit", protocol), _edit_payload(
        protocol, modalities_choice=["endoscopy", "pathology_wsi"], societies=[jsp.pk],
        named_researchers_emails=f"{_user(setting, 'lay').email}\n",
    ))

    assert response.status_code == 302
    version = protocol.versions.get()
    assert version.modalities == ["endoscopy", "pathology_wsi"]
    assert list(version.societies.all()) == [jsp]
    assert list(version.named_researchers.all()) == [_user(setting, "lay")]


def test_protocol_edit_unknown_researcher_address_is_refused(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_edit", protocol), _edit_payload(
        protocol, named_researchers_emails="nobody@example.jp", item_purpose_significance_body="変更",
    ))

    assert response.status_code == 200
    assert response.context["version_form"].errors["named_researchers_emails"] == [
        "No account has these addresses: nobody@example.jp"
    ]
    assert protocol.versions.get().items.get(key="purpose_significance").body == ""


def test_protocol_edit_bad_choice_shows_error_and_changes_nothing(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_edit", protocol), _edit_payload(
        protocol, consent_procedure="telepathy", item_purpose_significance_body="変更",
    ))

    assert response.status_code == 200
    assert list(response.context["version_form"].errors) == ["consent_procedure"]
    version = protocol.versions.get()
    assert version.consent_procedure == ""
    assert version.items.get(key="purpose_significance").body == ""


def test_protocol_edit_submitted_version_refused_with_message(client, setting):
    protocol = _submitted(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_edit", protocol), _edit_payload(protocol, item_title_body="別題"), follow=True)

    assert _messages(response) == ["This version was submitted and can no longer change; start an amendment."]
    assert protocol.versions.get().items.get(key="title").body == TITLE


def test_attachment_upload_pdf_attaches_it(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("attachment_upload", protocol), {
        "kind": "opt_out_notice", "file": SimpleUploadedFile("オプトアウト.pdf", PDF, content_type="application/pdf"),
    })

    assert response.status_code == 302
    attachment = protocol.versions.get().attachments.get()
    assert (attachment.kind, attachment.original_name, attachment.media_type) == (
        "opt_out_notice", "オプトアウト.pdf", "application/pdf",
    )


def test_attachment_upload_wrong_type_shows_error_and_attaches_nothing(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("attachment_upload", protocol), {
        "kind": "other", "file": SimpleUploadedFile("evil.pdf", b"MZ\x90\x00 not a pdf"),
    })

    assert response.status_code == 200
    assert response.context["attachment_form"].errors == {"file": [
        "Only PDF, Word, Excel or PowerPoint files can be attached; this file is none of them."
    ]}
    assert protocol.versions.get().attachments.count() == 0


def test_protocol_submit_incomplete_lists_every_missing_item(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_submit", protocol))

    assert response.status_code == 200
    missing = response.context["missing"]
    # Items ③-㉕ and the consent procedure: item ② starts with the applicant's own row.
    assert len(missing) == 24
    assert missing[0] == "③ Purpose and significance: required"
    assert missing[-1] == "Consent procedure: choose one"
    body = response.content.decode()
    assert 'data-testid="missing-items"' in body
    for spec in PROTOCOL_ITEMS[1:]:
        assert spec.marker in body
    assert _status(protocol) == ProtocolStatus.DRAFT
    assert protocol.number is None


def test_protocol_submit_complete_numbers_and_submits(client, setting):
    protocol = _draft(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_submit", protocol))

    assert response.status_code == 302
    assert response["Location"] == _url("protocol_detail", protocol)
    assert _status(protocol) == ProtocolStatus.SUBMITTED
    assert protocol.number == f"IRB-{timezone.localdate().year}-0001"


def test_protocol_withdraw_draft_ends_it_as_withdrawn(client, setting):
    protocol = _draft(setting, complete=False)
    client.force_login(setting["applicant"])

    client.post(_url("protocol_withdraw", protocol))

    assert _status(protocol) == ProtocolStatus.WITHDRAWN
    protocol.refresh_from_db()
    assert protocol.ended_at is not None
    response = client.get(_url("protocol_detail", protocol))
    assert 'data-status="withdrawn"' in response.content.decode()
    assert response.context["can_withdraw"] is False


def test_protocol_withdraw_under_review_refused_and_nothing_changes(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_withdraw", protocol), follow=True)

    assert _messages(response)[0].startswith("This cannot be done while the protocol is")
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


# --- Attachments are read under audit ------------------------------------------------------------


def test_attachment_download_streams_file_and_records_view(client, setting):
    protocol = _draft(setting)
    attachment = services.attachment_add(
        protocol=protocol, kind="other", by=setting["applicant"],
        upload=SimpleUploadedFile("資料.pdf", PDF, content_type="application/pdf"),
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    reader = _user(setting, "law")
    client.force_login(reader)

    response = client.get(_url("attachment_download", protocol, attachment.pk))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    event = AuditEvent.objects.filter(action="ethics.attachment_viewed").get()
    assert (event.actor_id, event.target_id) == (reader.pk, str(attachment.pk))
    assert event.details["sha256"] == attachment.sha256


def test_attachment_download_outsider_gets_404_and_nothing_recorded(client, setting, outsider):
    protocol = _draft(setting)
    attachment = services.attachment_add(
        protocol=protocol, kind="other", by=setting["applicant"],
        upload=SimpleUploadedFile("資料.pdf", PDF, content_type="application/pdf"),
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    client.force_login(outsider)

    response = client.get(_url("attachment_download", protocol, attachment.pk))

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="ethics.attachment_viewed").exists()


# --- Secretariat -------------------------------------------------------------------------------


def test_secretariat_queue_lists_submissions_in_fixed_queries(client, setting, django_assert_num_queries):
    first = _submitted(setting)
    second = _submitted(setting)
    _draft(setting)
    client.force_login(_user(setting, "secretariat"))

    # session, user, three role lookups, the second factor, is this a secretariat, the submissions with
    # their titles, the open full-board reviews, the answers to conditions, the periodic reports
    with django_assert_num_queries(11):
        response = client.get(reverse("ethics:secretariat_queue"))

    assert [row[0].pk for row in response.context["rows"]] == [first.pk, second.pk]
    assert response.context["rows"][0][0].title == TITLE


def test_review_open_expedited_opens_review_and_assigns_members(client, setting):
    protocol = _submitted(setting)
    client.force_login(_user(setting, "secretariat"))

    response = client.post(_url("review_open", protocol), {
        f"open-{protocol.pk}-mode": "expedited", f"open-{protocol.pk}-expedited_ground": "no_invasion",
    })

    assert response.status_code == 302
    review = Review.objects.get()
    assert (review.mode, review.expedited_ground) == ("expedited", "no_invasion")
    assert review.assignments.count() == 5
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


def test_review_open_expedited_without_ground_shows_error_and_changes_nothing(client, setting):
    protocol = _submitted(setting)
    client.force_login(_user(setting, "secretariat"))

    response = client.post(_url("review_open", protocol), {f"open-{protocol.pk}-mode": "expedited"})

    assert response.status_code == 200
    ((_p, open_form, _r),) = response.context["rows"]
    assert open_form.errors == {"expedited_ground": ["Give the ground for expedited review."]}
    assert not Review.objects.exists()
    assert _status(protocol) == ProtocolStatus.SUBMITTED


def test_protocol_return_with_reason_returns_it(client, setting):
    protocol = _submitted(setting)
    client.force_login(_user(setting, "secretariat"))

    client.post(_url("protocol_return", protocol), {f"return-{protocol.pk}-reason": "COI申告書を添付してください"})

    assert _status(protocol) == ProtocolStatus.RETURNED


def test_protocol_return_without_reason_shows_error_and_changes_nothing(client, setting):
    protocol = _submitted(setting)
    client.force_login(_user(setting, "secretariat"))

    response = client.post(_url("protocol_return", protocol), {f"return-{protocol.pk}-reason": ""})

    assert response.status_code == 200
    assert list(response.context["rows"][0][2].errors) == ["reason"]
    assert _status(protocol) == ProtocolStatus.SUBMITTED


# --- Committee members: inbox, comments, votes -------------------------------------------------


def test_inbox_lists_open_reviews_in_fixed_queries(client, setting, django_assert_num_queries):
    first, _r1 = _under_review(setting)
    second, _r2 = _under_review(setting)
    client.force_login(_user(setting, "law"))

    # session, user, three role lookups, the second factor, is this a secretariat, and the assignments
    # with their titles and whether voted
    with django_assert_num_queries(8):
        response = client.get(reverse("ethics:inbox"))

    assignments = list(response.context["assignments"])
    assert [a.review.version.protocol.pk for a in assignments] == [first.pk, second.pk]
    assert assignments[0].title == TITLE
    assert assignments[0].voted is False
    assert response.context["is_secretariat"] is False


def test_review_detail_shows_items_with_markers_and_comments(client, setting):
    protocol, review = _under_review(setting)
    services.comment_add(review=review, item_key="consent_procedure", body="同意撤回の方法を明記してください",
                         for_applicant=True, by=_user(setting, "lay"))
    client.force_login(_user(setting, "law"))

    response = client.get(_url("review_detail", protocol))

    body = response.content.decode()
    assert response.status_code == 200
    for spec in PROTOCOL_ITEMS:
        assert f'data-testid="comment-form-{spec.key}"' in body
        assert spec.marker in body
    assert "同意撤回の方法を明記してください" in body
    assert 'data-testid="vote-form"' in body
    assert "decision_form" not in response.context or response.context["decision_form"] is None


def test_review_comment_adds_comment_on_item(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("review_comment", protocol), {
        "item_key": "personal_info_handling", "body": "加工方法を具体的に", "for_applicant": "on",
    })

    assert response.status_code == 302
    comment = ItemComment.objects.get()
    assert (comment.item_key, comment.body, comment.for_applicant, comment.author) == (
        "personal_info_handling", "加工方法を具体的に", True, _user(setting, "law"),
    )


def test_review_comment_blank_shows_error_and_adds_nothing(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("review_comment", protocol), {"item_key": "personal_info_handling", "body": ""})

    assert response.status_code == 200
    assert response.context["rows"][7][3].errors == {"body": ["This field is required."]}
    assert ItemComment.objects.count() == 0


def test_comments_for_applicant_shown_on_protocol_page_others_not(client, setting):
    protocol, review = _under_review(setting)
    services.comment_add(review=review, item_key="title", body="申請者への指摘", for_applicant=True,
                         by=_user(setting, "law"))
    services.comment_add(review=review, item_key="title", body="委員間の意見", for_applicant=False,
                         by=_user(setting, "law"))
    client.force_login(setting["applicant"])

    body = client.get(_url("protocol_detail", protocol)).content.decode()

    assert "申請者への指摘" in body
    assert "委員間の意見" not in body


def test_review_vote_records_vote_and_lists_it(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "law"))

    client.post(_url("review_vote", protocol), {"choice": "approve", "reason": ""})
    response = client.get(_url("review_detail", protocol))

    vote = Vote.objects.get()
    assert (vote.member, vote.choice) == (setting["members"]["law"], "approve")
    assert [v.choice for v in response.context["votes"]] == ["approve"]


def test_review_vote_defer_without_reason_shows_error_and_records_nothing(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("review_vote", protocol), {"choice": "defer", "reason": ""})

    assert response.status_code == 200
    assert response.context["vote_form"].errors == {"reason": ["Give the reason for this vote."]}
    assert Vote.objects.count() == 0


def test_recused_member_sees_no_vote_form_and_post_is_refused(client, setting):
    science = setting["members"]["science"]
    protocol, review = _under_review(setting)
    services.conflict_declare(review=review, has_conflict=True, details="共同研究先である。", by=science.user)
    client.force_login(science.user)

    page = client.get(_url("review_detail", protocol))
    response = client.post(_url("review_vote", protocol), {"choice": "approve"}, follow=True)

    assert page.context["vote_form"] is None
    assert 'data-testid="recused-notice"' in page.content.decode()
    assert "declared a conflict of interest" in page.content.decode()
    assert _messages(response) == [
        "You are recused from this review (declared a conflict of interest) and cannot vote."
    ]
    assert Vote.objects.count() == 0


# --- Attendance, quorum and the chair's decision ---------------------------------------------------


def test_attendance_form_records_members_and_shows_quorum_problems(client, setting):
    protocol, _review = _under_review(setting, mode="full_board")
    members = setting["members"]
    client.force_login(members["secretariat"].user)

    client.post(_url("review_attendance", protocol), {"members": [members["chair"].pk, members["law"].pk]})
    response = client.get(_url("review_detail", protocol))

    assert set(Attendance.objects.values_list("member_id", flat=True)) == {members["chair"].pk, members["law"].pk}
    assert response.context["quorum_problems"] == [
        "At least 5 members must attend; 2 attended.",
        "No lay member attended.",
        "At least 2 external members must attend; 1 attended.",
    ]
    assert 'data-testid="quorum-problems"' in response.content.decode()


def test_review_decision_without_quorum_shows_refusal_and_changes_nothing(client, setting):
    protocol, _review = _under_review(setting, mode="full_board")
    client.force_login(_user(setting, "chair"))

    response = client.post(_url("review_decision", protocol), {
        "outcome": "approved", "method": "unanimous", "reasons": "妥当", "approved_until": "2030-01-01",
    })

    assert response.status_code == 200
    errors = response.context["decision_form"].non_field_errors()
    assert errors[0] == "The quorum is not met:"
    assert "No lay member attended." in errors
    assert not Decision.objects.exists()
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


def test_review_decision_expedited_records_approval(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "chair"))

    response = client.post(_url("review_decision", protocol), {
        "outcome": "approved", "method": "unanimous", "reasons": "妥当である", "approved_until": "2030-03-31",
    })

    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.outcome, str(decision.approved_until)) == ("approved", "2030-03-31")
    assert _status(protocol) == ProtocolStatus.APPROVED


def test_review_decision_conditions_without_conditions_shows_error(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "chair"))

    response = client.post(_url("review_decision", protocol), {
        "outcome": "conditions", "method": "majority", "reasons": "概ね妥当", "approved_until": "2030-03-31",
    })

    assert response.context["decision_form"].errors == {"conditions": ["State the conditions."]}
    assert not Decision.objects.exists()


def test_conditions_answered_then_verified_by_chair(client, setting):
    protocol, _review = _approved(setting, outcome="conditions", conditions="説明文書を修正すること")
    client.force_login(setting["applicant"])
    client.post(_url("conditions_answer", protocol), {"answer": "修正しました"})
    assert _status(protocol) == ProtocolStatus.CONDITIONS_ANSWERED

    client.force_login(_user(setting, "chair"))
    client.post(_url("conditions_verify", protocol), {"accepted": "yes", "note": ""})

    assert _status(protocol) == ProtocolStatus.APPROVED
    assert Decision.objects.get().conditions_verified_by == _user(setting, "chair")


def test_conditions_verify_reject_without_note_shows_error_and_changes_nothing(client, setting):
    protocol, _review = _approved(setting, outcome="conditions", conditions="説明文書を修正すること")
    services.conditions_answer(protocol=protocol, answer="修正しました", by=setting["applicant"])
    client.force_login(_user(setting, "chair"))

    response = client.post(_url("conditions_verify", protocol), {"accepted": "no", "note": ""})

    assert response.status_code == 200
    assert response.context["verify_form"].errors == {"note": ["Say what the answer still lacks."]}
    assert _status(protocol) == ProtocolStatus.CONDITIONS_ANSWERED


# --- Head of the institution -----------------------------------------------------------------------


def test_head_queue_lists_approved_protocols_in_fixed_queries(client, setting, django_assert_num_queries):
    approved, _review = _approved(setting)
    _under_review(setting)
    client.force_login(setting["head"])

    # session, user, three role lookups, is this a head, and the protocols with their titles
    with django_assert_num_queries(7):
        response = client.get(reverse("ethics:head_queue"))

    protocols = list(response.context["protocols"])
    assert [p.pk for p in protocols] == [approved.pk]
    assert protocols[0].title == TITLE


def test_head_decide_permit_makes_protocol_active(client, setting):
    protocol, _review = _approved(setting)
    client.force_login(setting["head"])

    client.post(_url("head_decide", protocol), {"permitted": "yes", "conditions": "", "reasons": ""})

    assert _status(protocol) == ProtocolStatus.ACTIVE
    assert HeadDecision.objects.get().permitted is True


def test_head_decide_deny_without_reasons_shows_error_and_changes_nothing(client, setting):
    protocol, _review = _approved(setting)
    client.force_login(setting["head"])

    response = client.post(_url("head_decide", protocol), {"permitted": "no", "conditions": "", "reasons": ""})

    assert response.status_code == 200
    assert response.context["head_form"].errors == {"reasons": ["Give the reasons for not permitting the research."]}
    assert not HeadDecision.objects.exists()
    assert _status(protocol) == ProtocolStatus.APPROVED


def test_head_decide_before_approval_refused_with_message(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(setting["head"])

    response = client.post(_url("head_decide", protocol), {"permitted": "yes"}, follow=True)

    assert _messages(response) == ["The head cannot permit research that the committee has not approved."]
    assert not HeadDecision.objects.exists()
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


def test_suspend_and_resume_by_chair(client, setting):
    protocol = _active(setting)
    client.force_login(_user(setting, "chair"))

    client.post(_url("protocol_suspend", protocol), {"reason": "重大な不適合の疑い"})
    assert _status(protocol) == ProtocolStatus.SUSPENDED
    client.post(_url("protocol_resume", protocol))

    assert _status(protocol) == ProtocolStatus.ACTIVE


# --- Amendments and the difference between versions -----------------------------------------------


def test_amendment_start_then_diff_shows_changed_item(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])
    client.post(_url("amendment_start", protocol), {"kind": "major_amendment", "summary": "対象期間の延長"})
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"],
                                   items={"methods_period": {"body": "methods_period の記載（2030年まで延長）"}})

    response = client.get(_url("version_diff", protocol))

    assert ProtocolVersion.objects.filter(protocol=protocol).count() == 2
    changed = [row for row in response.context["rows"] if row.changed]
    assert [row.label for row in changed] == ["summary of changes", "④ Methods and period"]
    assert changed[1].right == [("equal", "methods_period の記載"), ("insert", "（2030年まで延長）")]
    assert '<ins class="diff-insert">（2030年まで延長）</ins>' in response.content.decode()


def test_amendment_draft_hidden_from_committee_in_diff(client, setting):
    protocol = _active(setting)
    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="誤字修正", by=setting["applicant"])
    client.force_login(_user(setting, "law"))

    assert client.get(_url("version_diff", protocol) + "?from=1&to=2").status_code == 404


def test_amendment_submit_goes_to_secretariat_and_acknowledge(client, setting):
    protocol = _active(setting)
    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="誤字修正", by=setting["applicant"])
    client.force_login(setting["applicant"])
    client.post(_url("protocol_submit", protocol))
    assert _status(protocol) == ProtocolStatus.AMENDMENT_REVIEW

    client.force_login(_user(setting, "secretariat"))
    queue = client.get(reverse("ethics:secretariat_queue"))
    client.post(_url("minor_amendment_acknowledge", protocol))

    assert [row[0].pk for row in queue.context["rows"]] == [protocol.pk]
    assert _status(protocol) == ProtocolStatus.ACTIVE


# --- Languages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["protocol_detail", "review_detail"])
def test_pages_render_in_japanese_by_default(client, setting, page):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "chair"))
    client.cookies.pop("django_language", None)

    body = client.get(_url(page, protocol)).content.decode()

    assert '<html lang="ja">' in body
    assert "ログアウト" in body


@pytest.mark.parametrize("page", ["protocol_detail", "review_detail"])
def test_pages_render_in_english_with_language_cookie(client, setting, page):
    protocol, _review = _under_review(setting)
    client.force_login(_user(setting, "chair"))
    client.cookies["django_language"] = "en"

    body = client.get(_url(page, protocol)).content.decode()

    assert '<html lang="en">' in body
    assert "Sign out" in body
    assert "Application number" in body or "Review mode" in body


@pytest.mark.parametrize("language", ["ja", "en"])
def test_every_page_renders_for_its_persona_in_both_languages(client, setting, language):
    protocol = _active(setting)
    services.amendment_start(protocol=protocol, kind="major_amendment", summary="期間延長", by=setting["applicant"])
    other = _submitted(setting)
    client.cookies["django_language"] = language
    pages = [
        ("applicant", reverse("ethics:protocol_list")),
        ("applicant", reverse("ethics:protocol_create")),
        ("applicant", _url("protocol_detail", protocol)),
        ("applicant", _url("protocol_edit", protocol)),
        ("applicant", _url("version_diff", protocol)),
        ("law", reverse("ethics:inbox")),
        ("law", _url("review_detail", protocol)),
        ("secretariat", reverse("ethics:secretariat_queue")),
        ("secretariat", _url("protocol_detail", other)),
        ("chair", _url("protocol_detail", protocol)),
        ("head", reverse("ethics:head_queue")),
        ("head", _url("protocol_detail", protocol)),
    ]

    for who, url in pages:
        client.force_login(setting[who] if who in setting else _user(setting, who))
        response = client.get(url)
        assert response.status_code == 200, url
        assert f'<html lang="{language}">' in response.content.decode(), url


def test_conditions_answer_blank_shows_error_and_changes_nothing(client, setting):
    protocol, _review = _approved(setting, outcome="conditions", conditions="説明文書を修正すること")
    client.force_login(setting["applicant"])

    response = client.post(_url("conditions_answer", protocol), {"answer": " "})

    assert response.status_code == 200
    assert list(response.context["answer_form"].errors) == ["answer"]
    assert Decision.objects.get().conditions_answer == ""
    assert _status(protocol) == ProtocolStatus.CONDITIONS


def test_completion_report_ends_the_research_as_completed(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])

    client.post(_url("completion_report", protocol), {"report": "予定通り終了した。"})

    assert _status(protocol) == ProtocolStatus.COMPLETED
    protocol.refresh_from_db()
    assert protocol.end_report == "予定通り終了した。"
    assert protocol.ended_at is not None
    response = client.get(_url("protocol_detail", protocol))
    assert response.context["discontinue_form"] is None
    assert response.context["completion_form"] is None


def test_discontinuation_report_ends_the_research_as_discontinued(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])
    page = client.get(_url("protocol_detail", protocol))
    assert page.context["discontinue_form"] is not None

    response = client.post(_url("protocol_discontinue", protocol), {"report": "症例集積が困難なため中止した。"})

    assert response.status_code == 302
    assert _status(protocol) == ProtocolStatus.DISCONTINUED
    protocol.refresh_from_db()
    assert protocol.end_report == "症例集積が困難なため中止した。"
    assert AuditEvent.objects.filter(action="ethics.protocol_discontinued").count() == 1
    page = client.get(_url("protocol_detail", protocol)).content.decode()
    assert 'data-status="discontinued"' in page
    assert "症例集積が困難なため中止した。" in page


def test_discontinuation_blank_report_shows_error_and_changes_nothing(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_discontinue", protocol), {"report": " "})

    assert response.status_code == 200
    assert list(response.context["discontinue_form"].errors) == ["report"]
    assert _status(protocol) == ProtocolStatus.ACTIVE
    assert not AuditEvent.objects.filter(action="ethics.protocol_discontinued").exists()


def test_discontinuation_by_member_forbidden_and_nothing_changes(client, setting):
    protocol = _active(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("protocol_discontinue", protocol), {"report": "中止"})

    assert response.status_code == 403
    assert _status(protocol) == ProtocolStatus.ACTIVE
    protocol.refresh_from_db()
    assert protocol.end_report == ""


def test_review_comment_after_decision_refused_and_adds_nothing(client, setting):
    protocol, _review = _approved(setting)
    client.force_login(_user(setting, "law"))

    response = client.post(_url("review_comment", protocol), {"item_key": "title", "body": "遅れた意見"}, follow=True)

    assert _messages(response) == ["This review is closed."]
    assert ItemComment.objects.count() == 0


def test_periodic_report_sent_from_detail_page_and_acknowledged(client, setting):
    from django.utils import timezone

    protocol = _active(setting)
    client.force_login(setting["applicant"])
    period_end = timezone.localdate().isoformat()

    response = client.post(
        _url("periodic_report", protocol),
        {"period_end": period_end, "subjects_enrolled": "340", "body": "画像3,400件を解析した。"},
    )

    assert response.status_code == 302
    report = protocol.periodic_reports.get()
    assert report.subjects_enrolled == 340
    client.force_login(_user(setting, "secretariat"))
    page = client.get(_url("protocol_detail", protocol))
    assert 'data-testid="periodic-reports"' in page.content.decode()
    client.post(reverse("ethics:periodic_report_acknowledge", args=[protocol.pk, report.pk]))
    report.refresh_from_db()
    assert report.acknowledged_at is not None


def test_periodic_report_bad_input_shows_errors_and_saves_nothing(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("periodic_report", protocol), {"period_end": "", "subjects_enrolled": "-1", "body": ""})

    assert response.status_code == 200
    assert set(response.context["periodic_form"].errors) == {"period_end", "subjects_enrolled", "body"}
    assert not protocol.periodic_reports.exists()


def test_periodic_report_acknowledge_by_member_forbidden(client, setting):
    from django.utils import timezone

    protocol = _active(setting)
    report = services.periodic_report_submit(
        protocol=protocol, period_end=timezone.localdate(), subjects_enrolled=1, body="x", by=setting["applicant"]
    )
    client.force_login(_user(setting, "law"))

    response = client.post(reverse("ethics:periodic_report_acknowledge", args=[protocol.pk, report.pk]))

    assert response.status_code == 403
    report.refresh_from_db()
    assert report.acknowledged_at is None
