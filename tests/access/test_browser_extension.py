"""Item 15 in the browser: a warning before a grant ends links to the extension request filled in
from the grant; the applicant sends it as it is, and the society's steward sees only what changes
and approves it.

Elements are found by data-testid, form field names and URLs; no visible text is asserted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.access.amendment_prefill import add_months
from portal.access.models import Grant, GrantAmendment, LapseWarning
from portal.access.services.amendments import expiry_for, last_day_of
from portal.access.services.warnings import lapse_warnings_send
from portal.notifications.models import Notification
from tests.access.test_links import make_world
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    steward = UserFactory(email="steward@jsp.example.jp", full_name="情報 管理者")
    SocietyMembershipFactory(society=society, user=steward, role="steward")
    give_totp(steward)
    world = make_world(society)
    grant = world.grant
    grant.expires_at = expiry_for(timezone.localdate() + timedelta(days=40))
    grant.save(update_fields=["expires_at"])
    return {"world": world, "grant": grant, "steward": steward}


def test_warning_leads_to_a_prefilled_extension_the_steward_sees_as_a_diff(open_page, live_server, setting):
    from playwright.sync_api import expect

    base, grant, world = live_server.url, setting["grant"], setting["world"]
    [warning] = lapse_warnings_send()
    assert (warning.kind, warning.days_before) == ("grant_expiry", 60)
    assert Notification.objects.filter(recipient=world.user, url=f"/access/grants/{grant.pk}/").count() == 1

    # The applicant follows the warning's link to the grant and asks for the usual extension.
    company = open_page()
    sign_in(company, live_server, world.user.email)
    company.goto(f"{base}/access/grants/{grant.pk}/")
    company.get_by_test_id("extension-create").click()
    expect(company).to_have_url(f"{base}/access/grants/{grant.pk}/amendments/new/?extend=1")
    current = last_day_of(grant)
    form = company.get_by_test_id("amendment-form")
    expect(form.locator("[name=new_expires_on]")).to_have_value(add_months(current, 12).isoformat())
    expect(form.locator("[name=reason]")).not_to_have_value("")
    expect(form.locator("[name=users_to_remove]:checked")).to_have_count(0)
    expect(company.get_by_test_id("extension-prefill")).to_be_visible()
    form.locator("button[type=submit]").click()
    expect(company).to_have_url(f"{base}/access/amendments/{GrantAmendment.objects.get().pk}/")
    amendment = GrantAmendment.objects.get()
    assert (amendment.status, amendment.new_expires_on, amendment.users_to_add) == (
        GrantAmendment.Status.SUBMITTED, add_months(current, 12), [])

    # The steward sees the one changed field; the rest is collapsed; approves.
    steward = open_page()
    sign_in(steward, live_server, setting["steward"].email, totp=True)
    steward.goto(f"{base}/access/amendments/{amendment.pk}/")
    rows = steward.get_by_test_id("amendment-changes").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-testid", "change-last_day")
    expect(steward.get_by_test_id("amendment-unchanged").locator("dt").first).not_to_be_visible()
    decide = steward.get_by_test_id("amendment-decide")
    decide.locator("[name=decision][value=approve]").check()
    decide.locator("button[type=submit]").click()
    expect(steward.get_by_test_id("amendment-status")).to_be_visible()
    assert GrantAmendment.objects.get().status == GrantAmendment.Status.APPROVED
    assert last_day_of(Grant.objects.get(pk=grant.pk)) == add_months(current, 12)
    # The new end is a new series: nothing is due for it today.
    assert lapse_warnings_send() == []
    assert LapseWarning.objects.count() == 1
