"""Two dead ends of the ethics review, walked in the browser: the secretariat finds the review that
waits for its attendance from the menu and records it; the applicant revises a deferred protocol
(継続審査) and resubmits it.

Elements are found by data-testid, form field names and URLs, never by visible text.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.ethics import services
from portal.ethics.forms import item_body_name
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import Attendance, ProtocolStatus
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee
from tests.support.browser import open_menu, sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def setting(transactional_db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 責任者")
    OrganizationMembershipFactory(user=applicant, organization=university)
    return {"university": university, "committee": committee, "members": members, "applicant": applicant}


def _submitted(setting, title):  # type: ignore[no-untyped-def]
    applicant = setting["applicant"]
    protocol = services.protocol_create(
        committee=setting["committee"], institution=setting["university"], title=title, by=applicant
    )
    items = {
        spec.key: {"body": f"{spec.key} の記載"} if spec.always_required else {"not_applicable_reason": "該当しない"}
        for spec in PROTOCOL_ITEMS
    }
    items["title"] = {"body": title}
    services.protocol_update_draft(
        protocol=protocol, by=applicant, fields={"consent_procedure": "written"}, items=items,
        organization_entries=[{"institution_name": "研究大学", "institution_role": "research_institution",
                               "person_name": "研究 責任者", "person_role": "site_pi", "user": applicant}],
    )
    services.protocol_submit(protocol=protocol, by=applicant)
    return protocol


def test_browser_secretariat_finds_review_in_menu_and_records_attendance(page, live_server, setting):
    members = setting["members"]
    protocol = _submitted(setting, "全体審査の研究")
    review = services.review_open(protocol=protocol, mode="full_board", by=members["secretariat"].user,
                                  meeting_at=timezone.now() + timedelta(days=7))

    sign_in(page, live_server, members["secretariat"].user.email, totp=True)
    assert page.get_by_test_id("roles").locator("[data-role]").evaluate_all(
        "badges => badges.map(b => b.dataset.role)") == ["ethics_secretariat"]
    open_menu(page, "review")
    page.get_by_test_id("nav-review").locator("a[href='/ethics/secretariat/']").click()
    assert page.get_by_test_id(f"meeting-no-attendance-{protocol.pk}").is_visible()

    page.get_by_test_id(f"meeting-record-{protocol.pk}").click()
    attendance_form = page.get_by_test_id("attendance-form")
    for name in ("chair", "science", "law", "lay", "external"):
        attendance_form.locator(f"[name=members][value='{members[name].pk}']").check()
    attendance_form.locator("button[type=submit]").click()

    assert page.get_by_test_id("quorum-met").is_visible()
    assert set(Attendance.objects.filter(review=review).values_list("member__role", flat=True)) == {"chair", "member"}
    assert Attendance.objects.filter(review=review).count() == 5
    page.goto(f"{live_server.url}/ethics/secretariat/")
    assert page.get_by_test_id(f"meeting-{protocol.pk}").count() == 0
    assert page.get_by_test_id("meetings-empty").is_visible()


def test_browser_applicant_revises_deferred_protocol_and_resubmits(page, live_server, setting):
    members = setting["members"]
    protocol = _submitted(setting, "継続審査の研究")
    review = services.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion",
                                  by=members["secretariat"].user)
    services.comment_add(review=review, item_key="subject_selection", body="除外基準を明記してください。",
                         for_applicant=True, by=members["law"].user)
    services.decision_record(review=review, outcome="deferred", method="unanimous", reasons="除外基準が不明確。",
                             by=members["chair"].user)

    sign_in(page, live_server, setting["applicant"].email)
    page.goto(f"{live_server.url}/ethics/protocols/{protocol.pk}/")
    assert page.get_by_test_id("protocol-status").get_attribute("data-status") == ProtocolStatus.DEFERRED
    assert "⑤ 研究対象者の選定方針" in page.get_by_test_id("applicant-comments").inner_text()
    revise_form = page.get_by_test_id("revise-form")
    revise_form.locator("[name=summary]").fill("除外基準を追記した。")
    page.get_by_test_id("protocol-revise").click()

    assert page.url == f"{live_server.url}/ethics/protocols/{protocol.pk}/edit/"
    page.locator(f"[name={item_body_name('subject_selection')}]").fill("20歳以上。除外基準: 胃切除後の者。")
    page.get_by_test_id("save-draft").click()
    page.get_by_test_id("submit-form").locator("button[type=submit]").click()

    assert page.url == f"{live_server.url}/ethics/protocols/{protocol.pk}/"
    assert page.get_by_test_id("protocol-status").get_attribute("data-status") == ProtocolStatus.SUBMITTED
    assert page.get_by_test_id("versions").locator("tr[data-version='2']").count() == 1
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.SUBMITTED
    latest = protocol.versions.order_by("-number").first()
    assert latest.number == 2 and latest.submitted_at is not None
    assert latest.items.get(key="subject_selection").body == "20歳以上。除外基準: 胃切除後の者。"
