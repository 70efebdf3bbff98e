"""The ethics secretariat's own queue: submissions to check, full-board reviews whose attendance is
not recorded or does not make the quorum, answers to conditions, periodic reports; reached from
the menu."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

pytestmark = pytest.mark.django_db

QUEUE = "/ethics/secretariat/"


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


def _submitted(setting, title="胃がん検出AIの開発"):  # type: ignore[no-untyped-def]
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title=title, by=setting["applicant"]
    )
    items = {
        spec.key: {"body": f"{spec.key} の記載"} if spec.always_required else {"not_applicable_reason": "該当しない"}
        for spec in PROTOCOL_ITEMS
    }
    items["title"] = {"body": title}
    services.protocol_update_draft(
        protocol=protocol, by=setting["applicant"], fields={"consent_procedure": "written"}, items=items,
        organization_entries=[{"institution_name": "研究大学", "institution_role": "research_institution",
                               "person_name": "研究 責任者", "person_role": "site_pi", "user": setting["applicant"]}],
    )
    services.protocol_submit(protocol=protocol, by=setting["applicant"])
    return protocol


def _full_board(setting, title="胃がん検出AIの開発"):  # type: ignore[no-untyped-def]
    protocol = _submitted(setting, title)
    review = services.review_open(protocol=protocol, mode="full_board", by=_user(setting, "secretariat"),
                                  meeting_at=timezone.now() + timedelta(days=7))
    return protocol, review


def _attend(setting, review, names):  # type: ignore[no-untyped-def]
    services.attendance_record(review=review, members=[setting["members"][n] for n in names],
                               by=_user(setting, "secretariat"))


@pytest.fixture(autouse=True)
def _english_pages(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"


def test_secretariat_queue_lists_full_board_reviews_without_attendance_or_quorum(client, setting):
    no_attendance, _r1 = _full_board(setting, "出席未記録の研究")
    short, short_review = _full_board(setting, "定足数不足の研究")
    _attend(setting, short_review, ["chair", "science"])
    quorate, quorate_review = _full_board(setting, "定足数充足の研究")
    _attend(setting, quorate_review, ["chair", "science", "law", "lay", "external"])
    expedited = _submitted(setting, "迅速審査の研究")
    services.review_open(protocol=expedited, mode="expedited", expedited_ground="no_invasion",
                         by=_user(setting, "secretariat"))
    client.force_login(_user(setting, "secretariat"))

    response = client.get(QUEUE)

    meetings = response.context["meetings"]
    assert [(review.version.protocol.pk, recorded) for review, _problems, recorded in meetings] == [
        (no_attendance.pk, False), (short.pk, True)]
    assert meetings[1][1] == [
        "At least 5 members must attend; 2 attended.",
        "No humanities or social-science expert attended.",
        "No lay member attended.",
        "At least 2 external members must attend; 1 attended.",
    ]
    body = response.content.decode()
    assert f'data-testid="meeting-no-attendance-{no_attendance.pk}"' in body
    assert f'href="/ethics/protocols/{short.pk}/review/#attendance-heading"' in body
    assert f'data-testid="meeting-{quorate.pk}"' not in body


def test_secretariat_queue_lists_answers_to_conditions_and_periodic_reports(client, setting):
    protocol, review = _full_board(setting)
    _attend(setting, review, ["chair", "science", "law", "lay", "external"])
    services.decision_record(review=review, outcome="conditions", method="unanimous", reasons="条件付きで妥当。",
                             conditions="説明文書を修正すること。", by=_user(setting, "chair"),
                             approved_until=timezone.localdate() + timedelta(days=365))
    services.conditions_answer(protocol=protocol, answer="修正しました。", by=setting["applicant"])
    active, active_review = _full_board(setting, "実施中の研究")
    _attend(setting, active_review, ["chair", "science", "law", "lay", "external"])
    services.decision_record(review=active_review, outcome="approved", method="unanimous", reasons="妥当。",
                             by=_user(setting, "chair"), approved_until=timezone.localdate() + timedelta(days=365))
    services.head_decide(protocol=active, permitted=True, by=setting["head"])
    report = services.periodic_report_submit(protocol=active, period_end=date(2026, 3, 31), subjects_enrolled=120,
                                             body="順調に進行している。", by=setting["applicant"])
    client.force_login(_user(setting, "secretariat"))

    response = client.get(QUEUE)

    assert [p.pk for p in response.context["conditions_answered"]] == [protocol.pk]
    assert [r.pk for r in response.context["periodic_reports"]] == [report.pk]
    assert response.context["meetings"] == []


def test_secretariat_queue_in_fixed_queries(client, setting, django_assert_num_queries):
    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(QUEUE).status_code == 200
        return len(captured)

    _submitted(setting, "確認待ち")
    _r, review = _full_board(setting, "会議1")
    _attend(setting, review, ["chair"])
    client.force_login(_user(setting, "secretariat"))
    few = page_queries()
    for n in range(3):
        _submitted(setting, f"確認待ち{n}")
        _r, review = _full_board(setting, f"会議{n + 2}")
        _attend(setting, review, ["chair", "law"])

    # session, user, three role lookups, the second factor, is this a secretariat, the submissions,
    # the open full-board reviews, their assignments, attendance and attending members, the answers to
    # conditions, the periodic reports
    with django_assert_num_queries(14):
        response = client.get(QUEUE)

    assert len(response.context["meetings"]) == 4
    assert few == 14


def test_secretariat_queue_member_is_forbidden(client, setting):
    client.force_login(_user(setting, "law"))

    assert client.get(QUEUE).status_code == 403


def test_secretariat_queue_chair_may_use_it(client, setting):
    client.force_login(_user(setting, "chair"))

    assert client.get(QUEUE).status_code == 200


def test_navigation_reviews_menu_links_the_queue_for_secretariat_and_chair_only(client, setting):
    for name, shown in [("secretariat", True), ("chair", True), ("law", False)]:
        client.force_login(_user(setting, name))
        links = [str(item.url) for group, items in client.get(reverse("dashboard")).context["nav_groups"]
                 for item in items]
        assert (QUEUE in links) is shown, name
