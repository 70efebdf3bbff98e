"""A protocol's review in the browser: member comments and votes, chair approves, head permits.

Elements are found by data-testid, form field names and URLs, never by visible text, so the test
holds whichever language the catalogue says.
"""

from __future__ import annotations

import pytest

from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import ProtocolStatus
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
)
from tests.factories.ethics import EthicsCommitteeFactory, full_committee
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]

TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def review_setting(transactional_db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 責任者")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp", full_name="機関 長")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    protocol = services.protocol_create(committee=committee, institution=university, title=TITLE, by=applicant)
    items = {
        spec.key: {"body": f"{spec.key} の記載"} if spec.always_required else {"not_applicable_reason": "該当しない"}
        for spec in PROTOCOL_ITEMS
    }
    items["title"] = {"body": TITLE}
    services.protocol_update_draft(protocol=protocol, by=applicant, fields={"consent_procedure": "written"},
                                   items=items)
    services.protocol_submit(protocol=protocol, by=applicant)
    # Expedited (no invasiveness, no intervention): the chair may decide without a full-board quorum.
    services.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion",
                         by=members["secretariat"].user)
    return {"protocol": protocol, "members": members, "applicant": applicant, "head": head}


def test_browser_review_from_inbox_to_active_protocol(open_page, live_server, review_setting):
    protocol = review_setting["protocol"]
    members = review_setting["members"]
    review_url = f"{live_server.url}/ethics/protocols/{protocol.pk}/review/"

    # A member opens the protocol from the inbox, comments on an item and votes.
    member = open_page()
    sign_in(member, live_server, members["law"].user.email, totp=True)
    member.goto(f"{live_server.url}/ethics/inbox/")
    member.get_by_test_id(f"inbox-open-{protocol.pk}").click()
    assert member.url == review_url
    assert member.locator("html").get_attribute("lang") == "ja"
    item = member.locator("#item-consent_procedure")
    item.locator("summary").click()
    comment_form = member.get_by_test_id("comment-form-consent_procedure")
    comment_form.locator("[name=body]").fill("同意撤回の方法を説明文書に明記してください。")
    comment_form.locator("[name=for_applicant]").check()
    comment_form.locator("button[type=submit]").click()
    assert "同意撤回の方法を説明文書に明記してください。" in member.get_by_test_id(
        "comments-consent_procedure"
    ).inner_text()
    vote_form = member.get_by_test_id("vote-form")
    vote_form.locator("[name=choice][value=approve]").check()
    vote_form.locator("button[type=submit]").click()
    assert member.get_by_test_id("votes").locator("tr[data-vote=approve]").count() == 1

    # The chair records the committee's approval.
    chair = open_page()
    sign_in(chair, live_server, members["chair"].user.email, totp=True)
    chair.goto(review_url)
    decision_form = chair.get_by_test_id("decision-form")
    decision_form.locator("[name=outcome]").select_option("approved")
    decision_form.locator("[name=method]").select_option("unanimous")
    decision_form.locator("[name=reasons]").fill("科学的・倫理的に妥当である。")
    decision_form.locator("[name=approved_until]").fill("2030-03-31")
    decision_form.locator("button[type=submit]").click()
    assert chair.get_by_test_id("decision").locator("[data-outcome=approved]").count() == 1
    assert chair.get_by_test_id("protocol-status").get_attribute("data-status") == ProtocolStatus.APPROVED

    # The head of the institution permits the research.
    head = open_page()
    sign_in(head, live_server, review_setting["head"].email)
    head.goto(f"{live_server.url}/ethics/head/")
    head.get_by_test_id(f"head-open-{protocol.pk}").click()
    head_form = head.get_by_test_id("head-decision-form")
    head_form.locator("[name=permitted][value=yes]").check()
    head_form.locator("button[type=submit]").click()
    assert head.get_by_test_id("head-decision").is_visible()

    # The applicant sees the protocol active, with the comment meant for them.
    applicant = open_page()
    sign_in(applicant, live_server, review_setting["applicant"].email)
    applicant.goto(f"{live_server.url}/ethics/protocols/")
    applicant.locator(f"tr[data-protocol='{protocol.pk}'] a").click()
    assert applicant.get_by_test_id("protocol-status").get_attribute("data-status") == ProtocolStatus.ACTIVE
    assert applicant.get_by_test_id("data-flow").get_attribute("data-allowed") == "yes"
    assert "同意撤回の方法を説明文書に明記してください。" in applicant.get_by_test_id(
        "applicant-comments"
    ).inner_text()
    with applicant.expect_download() as download:
        applicant.get_by_test_id("permission-notice").click()
    assert download.value.suggested_filename.endswith(".pdf")
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    protocol.refresh_from_db()
    assert protocol.status == ProtocolStatus.ACTIVE
