"""Item ② as rows, a member's conflict declaration, and the end of the research, in the browser.

Elements are found by data-testid, form field names and URLs, never by visible text.
"""

from __future__ import annotations

import pytest

from portal.ethics import services
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import ConflictDeclaration, Protocol
from tests.factories import OrganizationFactory, OrganizationMembershipFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]

TITLE = "多機関共同の内視鏡画像研究"


@pytest.fixture
def setting(transactional_db):  # type: ignore[no-untyped-def]
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(institution=university, slug="irb")
    members = full_committee(committee)
    # Every committee member works at the applicant's institution: none is recused for that alone.
    for member in members.values():
        OrganizationMembershipFactory(user=member.user, organization=university)
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 責任者")
    OrganizationMembershipFactory(user=applicant, organization=university)
    protocol = services.protocol_create(committee=committee, institution=university, title=TITLE, by=applicant)
    items = {
        spec.key: {"body": f"{spec.key} の記載"} if spec.always_required else {"not_applicable_reason": "該当しない"}
        for spec in PROTOCOL_ITEMS
    }
    items["title"] = {"body": TITLE}
    services.protocol_update_draft(protocol=protocol, by=applicant, fields={"consent_procedure": "written"},
                                   items=items)
    return {"protocol": protocol, "members": members, "applicant": applicant}


def test_browser_item_2_rows_lead_pi_and_conflict_declaration(open_page, live_server, setting):
    protocol = setting["protocol"]
    members = setting["members"]

    # The applicant makes it multi-site and names the lead PI in a new row of item ②.
    applicant = open_page()
    sign_in(applicant, live_server, setting["applicant"].email)
    applicant.goto(f"{live_server.url}/ethics/protocols/{protocol.pk}/edit/")
    formset = applicant.get_by_test_id("organization-formset")
    assert formset.locator("[name='org-0-person_role']").input_value() == "site_pi"
    applicant.locator("[name=multi_site]").check()
    formset.locator("[name='org-1-institution_name']").fill("中央大学")
    formset.locator("[name='org-1-institution_role']").select_option("collaborating")
    formset.locator("[name='org-1-person_name']").fill("代表 太郎")
    formset.locator("[name='org-1-person_role']").select_option("lead_pi")
    applicant.get_by_test_id("save-draft").click()
    applicant.get_by_test_id("submit-form").locator("button[type=submit]").click()
    assert applicant.get_by_test_id("protocol-status").get_attribute("data-status") == "submitted"
    assert applicant.get_by_test_id("organization-entries").locator("tr[data-person-role=lead_pi]").count() == 1

    services.review_open(protocol=protocol, mode="full_board", by=members["secretariat"].user)

    # A member of the same institution takes part, and declares a conflict on the review page.
    member = open_page()
    sign_in(member, live_server, members["law"].user.email, totp=True)
    member.goto(f"{live_server.url}/ethics/protocols/{protocol.pk}/review/")
    assert member.get_by_test_id("vote-form").count() == 1
    conflict = member.get_by_test_id("conflict-form")
    conflict.locator("[name=has_conflict][value=yes]").check()
    conflict.locator("[name=details]").fill("申請者と共同研究を行っている。")
    conflict.locator("button[type=submit]").click()
    assert member.get_by_test_id("recused-notice").count() == 1
    assert member.get_by_test_id("vote-form").count() == 0

    # The chair sees the declaration.
    chair = open_page()
    sign_in(chair, live_server, members["chair"].user.email, totp=True)
    chair.goto(f"{live_server.url}/ethics/protocols/{protocol.pk}/review/")
    assert chair.get_by_test_id("conflict-declarations").locator("tr[data-conflict=yes]").count() == 1
    assert ConflictDeclaration.objects.get().has_conflict is True
    assert Protocol.objects.get().versions.get().organization_entries.count() == 2
