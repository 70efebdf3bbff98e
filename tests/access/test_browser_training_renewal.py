"""Item 15 in the browser: a named user whose research-ethics training lapsed sees why no links are
issued, records the renewed training on the grant's page (in Japanese, the default) and gets links
again.

Elements are found by data-testid, form field names and URLs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.access.models import RequestUser
from tests.access.test_links import make_world
from tests.factories import SocietyFactory
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    return make_world(society)


def test_lapsed_user_records_the_renewed_training_and_gets_links_again(open_page, live_server, setting):
    from playwright.sync_api import expect

    world = setting
    today = timezone.localdate()
    lapsed = today - timedelta(days=1100)
    RequestUser.objects.filter(user=world.other).update(ethics_training_date=lapsed)
    page = open_page()
    sign_in(page, live_server, world.other.email)

    page.goto(f"{live_server.url}/access/grants/{world.grant.pk}/")
    expect(page.get_by_test_id("grant-reasons")).to_contain_text(
        f"あなたの研究倫理講習（{lapsed.isoformat()} 受講）は {(lapsed + timedelta(days=1095)).isoformat()} に失効しました")
    expect(page.get_by_test_id("file-download")).to_have_count(0)
    row = page.locator(f"[data-training-user='{world.other.pk}']")
    expect(row.get_by_test_id("training-lapses")).to_contain_text("（失効）")
    expect(page.get_by_test_id("training-renew")).to_have_count(1)  # only their own row

    row.locator("[name=training_date]").fill(today.isoformat())
    row.get_by_role("button", name="受講日を記録する").click()

    expect(page.get_by_test_id("grant-reasons")).to_have_count(0)
    expect(page.get_by_test_id("file-download")).to_have_count(2)
    expect(row.get_by_test_id("training-date")).to_have_text(today.isoformat())
    assert RequestUser.objects.get(user=world.other).ethics_training_date == today
