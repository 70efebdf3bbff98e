"""The protocols API: who sees which protocols and comments, and a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.ethics import services
from portal.ethics.models import Protocol, ProtocolVersion
from portal.ethics.selectors import protocol_data_flow
from tests.ethics.test_services import _approve, _attend_all, _draft, _to_review
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

TITLE = "内視鏡画像を用いた胃がん検出AIの開発"
LIST = "/api/v1/ethics/protocols/"


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


def _active(setting):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    services.comment_add(review=review, item_key="title", body="題名を具体的に", for_applicant=True,
                         by=setting["members"]["law"].user)
    services.comment_add(review=review, item_key="", body="委員間のメモ", for_applicant=False,
                         by=setting["members"]["science"].user)
    _attend_all(setting, review)
    _approve(setting, review)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


def test_list_applicant_sees_own_protocol_with_data_flow(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])

    response = client.get(LIST)

    assert response.status_code == 200
    assert response.json()["results"] == [{
        "id": protocol.pk,
        "number": protocol.number,
        "kind": "research",
        "status": "active",
        "committee": {"slug": "irb", "name_ja": setting["committee"].name_ja,
                      "name_en": setting["committee"].name_en},
        "title": TITLE,
        "approved_until": protocol.approved_until.isoformat(),
        "periodic_report_due": protocol.periodic_report_due.isoformat(),  # a year after permission
        "ended_at": None,
        "data_flow": {"allowed": True, "reason": "承認・許可されています。"},  # the API answers in Japanese by default
    }]


@pytest.mark.parametrize("persona", ["member", "secretariat", "head"])
def test_list_committee_and_head_see_submitted_protocols_not_drafts(client, setting, persona):
    submitted = _active(setting)
    _draft(setting)  # never submitted: the applicant's alone
    user = {"member": setting["members"]["law"].user, "secretariat": setting["members"]["secretariat"].user,
            "head": setting["head"]}[persona]
    client.force_login(user)

    response = client.get(LIST)

    assert [row["id"] for row in response.json()["results"]] == [submitted.pk]


def test_list_outsider_sees_nothing(client, setting):
    _active(setting)
    client.force_login(setting["outsider"])

    response = client.get(LIST)

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_list_anonymous_refused(client, setting):
    _active(setting)

    assert client.get(LIST).status_code in {401, 403}


def test_list_post_without_fields_is_400_and_creates_nothing(client, setting):
    # POST on the list starts a draft (tests/ethics/test_review_api.py); not without fields.
    client.force_login(setting["applicant"])

    response = client.post(LIST, {})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"committee", "institution", "title"}
    assert Protocol.objects.count() == 0


@pytest.mark.parametrize("count", [1, 3])
def test_list_query_count_is_fixed(client, setting, count, django_assert_num_queries):
    for _ in range(count):
        _active(setting)
    client.force_login(setting["members"]["law"].user)

    # session, user, roles and MFA checks, COUNT, the page, versions with their head decisions
    with django_assert_num_queries(9):
        response = client.get(LIST)

    assert len(response.json()["results"]) == count


def test_detail_applicant_sees_versions_items_review_and_only_comments_for_them(client, setting):
    protocol = _active(setting)
    client.force_login(setting["applicant"])

    response = client.get(f"{LIST}{protocol.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == TITLE
    [version] = body["versions"]
    assert (version["number"], version["kind"]) == (1, "initial")
    assert len(version["items"]) == 25
    assert version["items"][0] == {"key": "title", "number": 1, "label": "① 研究の名称", "body": TITLE,
                                   "not_applicable_reason": ""}
    assert version["items"][24]["number"] == 25
    review = version["review"]
    assert (review["type"], review["mode"]) == ("new", "full_board")
    decision = review["decision"]
    assert decision["outcome"] == "approved"
    assert decision["reasons"] == "科学的・倫理的に妥当である。"
    assert decision["conditions"] == ""
    assert [(c["item_key"], c["item_label"], c["body"]) for c in review["comments"]] == [
        ("title", "① 研究の名称", "題名を具体的に")]
    assert version["notices"] == [
        {"kind": "decision", "url": f"/ethics/documents/protocols/{protocol.pk}/versions/1/decision.pdf"},
        {"kind": "permission", "url": f"/ethics/documents/protocols/{protocol.pk}/versions/1/permission.pdf"},
    ]


@pytest.mark.parametrize("persona", ["law", "secretariat"])
def test_detail_committee_sees_all_comments(client, setting, persona):
    protocol = _active(setting)
    client.force_login(setting["members"][persona].user)

    response = client.get(f"{LIST}{protocol.pk}/")

    comments = response.json()["versions"][0]["review"]["comments"]
    assert [c["body"] for c in comments] == ["題名を具体的に", "委員間のメモ"]


def test_detail_head_sees_only_comments_for_applicant(client, setting):
    protocol = _active(setting)
    client.force_login(setting["head"])

    comments = client.get(f"{LIST}{protocol.pk}/").json()["versions"][0]["review"]["comments"]

    assert [c["body"] for c in comments] == ["題名を具体的に"]


def test_detail_draft_amendment_hidden_from_committee_shown_to_applicant(client, setting):
    protocol = _active(setting)
    services.amendment_start(protocol=protocol, kind="minor_amendment", summary="分担者の追加",
                             by=setting["applicant"])

    client.force_login(setting["members"]["law"].user)
    assert [v["number"] for v in client.get(f"{LIST}{protocol.pk}/").json()["versions"]] == [1]
    client.force_login(setting["applicant"])
    assert [v["number"] for v in client.get(f"{LIST}{protocol.pk}/").json()["versions"]] == [1, 2]


@pytest.mark.parametrize("persona", ["outsider", "other_member"])
def test_detail_not_visible_is_404(client, setting, persona):
    protocol = _active(setting)
    if persona == "other_member":
        other = EthicsCommitteeFactory(slug="other")
        user = full_committee(other)["chair"].user
    else:
        user = setting["outsider"]
    client.force_login(user)

    assert client.get(f"{LIST}{protocol.pk}/").status_code == 404


def _flows_agree(protocol: Protocol, today=None) -> None:  # type: ignore[no-untyped-def]
    prefetched = Protocol.objects.prefetch_related("versions__head_decision").get(pk=protocol.pk)
    plain = Protocol.objects.get(pk=protocol.pk)
    assert protocol_data_flow(prefetched, today=today) == protocol_data_flow(plain, today=today)


def test_data_flow_with_prefetched_versions_agrees_in_every_state(setting):
    draft = _draft(setting)
    _flows_agree(draft)
    protocol = _active(setting)
    _flows_agree(protocol)
    _flows_agree(protocol, today=protocol.approved_until + timedelta(days=1))
    services.amendment_start(protocol=protocol, kind=ProtocolVersion.Kind.MINOR_AMENDMENT,
                             summary="軽微", by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    _flows_agree(protocol)
    services.minor_amendment_acknowledge(protocol=protocol, by=setting["members"]["secretariat"].user)
    services.amendment_start(protocol=protocol, kind=ProtocolVersion.Kind.MAJOR_AMENDMENT,
                             summary="重大", by=setting["applicant"])
    services.amendment_submit(protocol=protocol, by=setting["applicant"])
    protocol.refresh_from_db()
    _flows_agree(protocol)
    assert protocol_data_flow(protocol).allowed is False
    services.protocol_suspend(protocol=protocol, reason="調査", by=setting["head"])
    protocol.refresh_from_db()
    _flows_agree(protocol)
