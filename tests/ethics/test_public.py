"""The committees' public pages: rules, members and the yearly summary, in Japanese and English."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.ethics import services
from portal.ethics.models import CommitteeMembership
from tests.ethics.test_services import _approve, _attend_all, _to_review
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import (
    CommitteeMembershipFactory,
    EthicsCommitteeFactory,
    full_committee,
)

TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def setting(db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", name_en="Research University", kind="university")
    committee = EthicsCommitteeFactory(
        institution=university, slug="irb", name_ja="研究大学倫理審査委員会",
        name_en="Research University Ethics Committee", rules_ja="第1条 この規程は委員会の運営を定める。",
        rules_en="Article 1. These rules govern the committee.",
    )
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _english(client):  # type: ignore[no-untyped-def]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def test_committee_list_needs_no_sign_in_and_names_committees(client, setting):
    response = client.get(reverse("committees:list"))

    assert response.status_code == 200
    assert "研究大学倫理審査委員会" in response.content.decode()
    assert "研究大学" in response.content.decode()


def test_committee_list_in_english(client, setting):
    _english(client)

    content = client.get(reverse("committees:list")).content.decode()

    assert "Research University Ethics Committee" in content
    assert "Research ethics committees" in content


def test_committee_list_query_count_is_fixed(client, setting, django_assert_num_queries):
    EthicsCommitteeFactory.create_batch(3)

    with django_assert_num_queries(1):
        client.get(reverse("committees:list"))


def test_committee_detail_japanese_by_default(client, setting):
    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert "第1条 この規程は委員会の運営を定める。" in content
    assert "Article 1." not in content
    assert 'lang="ja"' in content


def test_committee_detail_english_rules(client, setting):
    _english(client)

    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert "Article 1. These rules govern the committee." in content
    assert "第1条" not in content
    assert "Members" in content


def test_committee_detail_english_falls_back_to_japanese_rules_with_note(client, setting):
    committee = setting["committee"]
    committee.rules_en = ""
    committee.save()
    _english(client)

    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert "第1条 この規程は委員会の運営を定める。" in content
    assert "The rules are published in Japanese only." in content


def test_committee_detail_lists_voting_members_chair_first_without_secretariat(client, setting):
    response = client.get(reverse("committees:detail", args=["irb"]))

    members = response.context["members"]
    assert [m.role for m in members] == ["chair", "member", "member", "member", "member"]
    assert members[0].user.email == "chair@irb.example.jp"
    assert "secretariat@irb.example.jp" not in [m.user.email for m in members]
    assert "secretariat 委員" not in response.content.decode()
    assert "chair 委員" in response.content.decode()


def test_committee_detail_hides_inactive_members(client, setting):
    CommitteeMembershipFactory(committee=setting["committee"], user=UserFactory(full_name="退任 委員"), active=False)

    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert "退任 委員" not in content


def test_committee_detail_query_count_is_fixed(client, setting, django_assert_num_queries):
    for _ in range(3):
        CommitteeMembershipFactory(committee=setting["committee"], role=CommitteeMembership.Role.MEMBER)

    with django_assert_num_queries(3):  # committee, members with users, years with decisions
        client.get(reverse("committees:detail", args=["irb"]))


def test_committee_detail_unknown_is_404(client, db):
    assert client.get(reverse("committees:detail", args=["nope"])).status_code == 404


def _decide(setting, outcome="approved", permit=True, **extra):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    _approve(setting, review, outcome=outcome, **extra)
    if permit:
        services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    protocol.refresh_from_db()
    return protocol


def test_summary_counts_by_type_and_outcome_and_lists_permitted_titles(client, setting):
    permitted = _decide(setting)
    _decide(setting, permit=False)  # approved but not (yet) permitted: not listed
    _decide(setting, outcome="not_approved", permit=False)
    year = timezone.localdate().year

    response = client.get(reverse("committees:summary", args=["irb", year]))

    assert response.status_code == 200
    assert response.context["total"] == 3
    assert {row.value: row.count for row in response.context["by_type"]} == {
        "new": 3, "amendment": 0, "continuing": 0, "completion": 0, "serious_noncompliance": 0}
    assert {row.value: row.count for row in response.context["by_outcome"]} == {
        "approved": 2, "conditions": 0, "deferred": 0, "not_approved": 1, "not_subject": 0}
    assert response.context["approved"] == [{"number": permitted.number, "title": TITLE}]
    assert TITLE in response.content.decode()


def test_summary_detail_page_links_to_year(client, setting):
    _decide(setting)
    year = timezone.localdate().year

    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert reverse("committees:summary", args=["irb", year]) in content


def test_summary_other_year_is_empty(client, setting):
    _decide(setting)

    response = client.get(reverse("committees:summary", args=["irb", timezone.localdate().year - 1]))

    assert response.context["total"] == 0
    assert response.context["approved"] == []


def test_summary_future_year_is_404(client, setting):
    assert client.get(reverse("committees:summary", args=["irb", timezone.localdate().year + 1])).status_code == 404


def test_summary_in_english(client, setting):
    _decide(setting)
    _english(client)

    content = client.get(reverse("committees:summary", args=["irb", timezone.localdate().year])).content.decode()

    assert "Approved and permitted studies" in content
    assert "By review type" in content


def test_summary_query_count_is_fixed(client, setting, django_assert_num_queries):
    for _ in range(3):
        _decide(setting)

    with django_assert_num_queries(4):  # committee, counts, non-compliance opinions, approved titles
        client.get(reverse("committees:summary", args=["irb", timezone.localdate().year]))


def test_committee_detail_never_shows_member_email_for_unnamed_member(client, setting):
    CommitteeMembershipFactory(committee=setting["committee"], user=UserFactory(email="noname@example.jp", full_name=""))

    content = client.get(reverse("committees:detail", args=["irb"])).content.decode()

    assert "noname@example.jp" not in content
