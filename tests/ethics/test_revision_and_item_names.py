"""A deferred protocol (継続審査) revised and resubmitted from its page; comments and API answers
name each item as the committee does (⑤ 研究対象者の選定方針), never by its stored key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import ProtocolStatus, ProtocolVersion
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

pytestmark = pytest.mark.django_db

TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 責任者")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _user(setting, name):  # type: ignore[no-untyped-def]
    return setting["members"][name].user


def _items() -> dict[str, dict[str, str]]:
    items = {
        spec.key: {"body": f"{spec.key} の記載"} if spec.always_required else {"not_applicable_reason": "該当しない"}
        for spec in PROTOCOL_ITEMS
    }
    items["title"] = {"body": TITLE}
    return items


def _under_review(setting):  # type: ignore[no-untyped-def]
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title=TITLE, by=setting["applicant"]
    )
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "written"}, items=_items(),
        organization_entries=[{"institution_name": "研究大学", "institution_role": "research_institution",
                               "person_name": "研究 責任者", "person_role": "site_pi", "user": setting["applicant"]}],
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    review = services.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion",
                                  by=_user(setting, "secretariat"))
    return protocol, review


def _decide(setting, review, outcome):  # type: ignore[no-untyped-def]
    services.decision_record(
        review=review, outcome=outcome, method="unanimous", reasons="説明文書の記載が不十分である。",
        approved_until=timezone.localdate() + timedelta(days=365), by=_user(setting, "chair"),
    )


def _deferred(setting):  # type: ignore[no-untyped-def]
    protocol, review = _under_review(setting)
    services.comment_add(review=review, item_key="subject_selection", body="除外基準を明記してください。",
                         for_applicant=True, by=_user(setting, "law"))
    _decide(setting, review, "deferred")
    protocol.refresh_from_db()
    return protocol


def _url(name, protocol):  # type: ignore[no-untyped-def]
    return reverse(f"ethics:{name}", args=[protocol.pk])


def _status(protocol) -> str:  # type: ignore[no-untyped-def]
    protocol.refresh_from_db()
    return protocol.status


# --- 継続審査: revise and resubmit ---------------------------------------------------------------


def test_protocol_detail_deferred_offers_revision_to_applicant(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])

    response = client.get(_url("protocol_detail", protocol))

    assert response.context["revise_form"] is not None
    assert 'data-testid="revise-form"' in response.content.decode()
    assert response.context["decision"].outcome == "deferred"


@pytest.mark.parametrize("persona", ["chair", "secretariat", "law", "head"])
def test_protocol_detail_deferred_offers_no_revision_to_others(client, setting, persona):
    protocol = _deferred(setting)
    client.force_login(setting["head"] if persona == "head" else _user(setting, persona))

    response = client.get(_url("protocol_detail", protocol))

    assert response.context["revise_form"] is None
    assert 'data-testid="revise-form"' not in response.content.decode()


def test_protocol_detail_not_deferred_offers_no_revision(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(setting["applicant"])

    assert client.get(_url("protocol_detail", protocol)).context["revise_form"] is None


def test_protocol_revise_opens_a_draft_and_leads_to_its_editor(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_revise", protocol), {"summary": "除外基準を追記"})

    assert response.status_code == 302
    assert response["Location"] == _url("protocol_edit", protocol)
    latest = protocol.versions.order_by("-number").first()
    assert (latest.number, latest.kind, latest.change_summary, latest.submitted_at) == (
        2, ProtocolVersion.Kind.INITIAL, "除外基準を追記", None)
    assert _status(protocol) == ProtocolStatus.DEFERRED


def test_protocol_detail_while_revising_keeps_the_opinion_and_offers_edit_not_revision(client, setting):
    protocol = _deferred(setting)
    services.protocol_revise(protocol=protocol, summary="除外基準を追記", by=setting["applicant"])
    client.force_login(setting["applicant"])

    response = client.get(_url("protocol_detail", protocol))

    assert response.context["revise_form"] is None  # the service would refuse a second revision
    assert response.context["can_edit"] is True
    assert response.context["decision"].outcome == "deferred"


def test_protocol_revise_without_summary_shows_error_and_changes_nothing(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_revise", protocol), {"summary": "  "})

    assert response.status_code == 200
    assert list(response.context["revise_form"].errors) == ["summary"]
    assert protocol.versions.count() == 1
    assert _status(protocol) == ProtocolStatus.DEFERRED


def test_protocol_revise_by_committee_member_is_forbidden_and_changes_nothing(client, setting):
    protocol = _deferred(setting)
    client.force_login(_user(setting, "chair"))

    response = client.post(_url("protocol_revise", protocol), {"summary": "勝手に改訂"})

    assert response.status_code == 403
    assert protocol.versions.count() == 1


def test_protocol_revise_when_not_deferred_is_refused_and_changes_nothing(client, setting):
    protocol, _review = _under_review(setting)
    client.force_login(setting["applicant"])

    response = client.post(_url("protocol_revise", protocol), {"summary": "改訂"}, follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        "再申請のために修正できるのは、継続審査となった研究計画書のみです。"]
    assert protocol.versions.count() == 1
    assert _status(protocol) == ProtocolStatus.UNDER_REVIEW


def test_protocol_submit_revision_resubmits_to_the_committee(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])
    client.post(_url("protocol_revise", protocol), {"summary": "除外基準を追記"})
    items = _items()
    items["subject_selection"] = {"body": "20歳以上。除外基準: 胃切除後の者。"}
    services.protocol_update_draft(protocol=protocol, by=setting["applicant"], fields={}, items=items)

    response = client.post(_url("protocol_submit", protocol))

    assert response.status_code == 302
    assert _status(protocol) == ProtocolStatus.SUBMITTED
    latest = protocol.versions.order_by("-number").first()
    assert latest.number == 2 and latest.submitted_at is not None


def test_protocol_submit_revision_of_deferred_amendment_resubmits(client, setting):
    # A deferred amendment is revised into an amendment draft; it is submitted anew, not refused
    # as "no amendment draft" (the page used to pick the service by the version's kind).
    protocol, review = _under_review(setting)
    _decide(setting, review, "approved")
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="研究期間の延長",
                             by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    amendment_review = services.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion",
                                            by=_user(setting, "secretariat"))
    _decide(setting, amendment_review, "deferred")
    services.protocol_revise(protocol=protocol, summary="施設の体制を追記", by=setting["applicant"])
    client.force_login(setting["applicant"])

    client.post(_url("protocol_submit", protocol))

    assert _status(protocol) == ProtocolStatus.SUBMITTED


def test_api_submit_revision_of_deferred_amendment_resubmits(client, setting):
    protocol, review = _under_review(setting)
    _decide(setting, review, "approved")
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="研究期間の延長",
                             by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    amendment_review = services.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion",
                                            by=_user(setting, "secretariat"))
    _decide(setting, amendment_review, "deferred")
    services.protocol_revise(protocol=protocol, summary="施設の体制を追記", by=setting["applicant"])
    client.force_login(setting["applicant"])

    response = client.post(f"/api/v1/ethics/protocols/{protocol.pk}/submit/")

    assert response.status_code == 200, response.content
    assert _status(protocol) == ProtocolStatus.SUBMITTED


# --- Items named as the committee names them ---------------------------------------------------


def test_protocol_detail_comment_names_item_by_marker_and_label_in_japanese(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])

    body = client.get(_url("protocol_detail", protocol)).content.decode()

    comments = body.split('data-testid="applicant-comments"')[1].split("</section>")[0]
    assert '<a href="#item-subject_selection">⑤ 研究対象者の選定方針</a>' in comments
    assert ">subject_selection<" not in comments


def test_review_comment_form_names_items_by_marker_and_label(setting):
    from portal.ethics.forms import CommentForm

    choices = dict(CommentForm().fields["item_key"].choices)

    assert str(choices["subject_selection"]) == "⑤ Policy for selecting research subjects"


def test_api_protocol_detail_gives_item_and_comment_labels_beside_keys(client, setting):
    protocol = _deferred(setting)
    client.force_login(setting["applicant"])

    version = client.get(f"/api/v1/ethics/protocols/{protocol.pk}/", HTTP_ACCEPT_LANGUAGE="ja").json()["versions"][0]

    assert [(c["item_key"], c["item_label"]) for c in version["review"]["comments"]] == [
        ("subject_selection", "⑤ 研究対象者の選定方針")]
    item = next(i for i in version["items"] if i["key"] == "subject_selection")
    assert (item["number"], item["label"]) == (5, "⑤ 研究対象者の選定方針")


def test_protocol_edit_while_revising_shows_the_comments_by_item_name(client, setting):
    protocol = _deferred(setting)
    services.protocol_revise(protocol=protocol, summary="除外基準を追記", by=setting["applicant"])
    client.force_login(setting["applicant"])

    body = client.get(_url("protocol_edit", protocol)).content.decode()

    comments = body.split('data-testid="applicant-comments"')[1].split("</section>")[0]
    assert '<a href="#edit-subject_selection">⑤ 研究対象者の選定方針</a>' in comments
    assert "除外基準を明記してください。" in comments
