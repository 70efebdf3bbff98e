"""Item 12 in the browser: the grant holder opens the grant, filters its files, clicks one file's
link and receives its bytes.

Elements are found by data-testid, form field names and URLs.
"""

from __future__ import annotations

import pytest

from portal.access.models import Download
from tests.access.test_links import CONTENT, make_world
from tests.factories import SocietyFactory
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jsp", name_ja="日本病理学会", name_en="The Japanese Society of Pathology")
    return make_world(society)


def test_grant_holder_filters_the_files_and_downloads_one(open_page, live_server, setting):
    from playwright.sync_api import expect

    world = setting
    base = live_server.url
    holder = open_page()
    sign_in(holder, live_server, world.user.email)

    holder.goto(f"{base}/access/grants/{world.grant.pk}/")
    expect(holder.get_by_test_id("grant-application")).to_contain_text(world.grant.access_request.title)
    files = holder.get_by_test_id("grant-files")
    expect(files.get_by_test_id("file-download")).to_have_count(2)

    filters = holder.get_by_test_id("grant-files-filter")
    filters.locator("[name=path]").fill("a.png")
    filters.locator("[name=modality]").select_option("endoscopy")
    filters.locator("button[type=submit]").click()
    expect(holder).to_have_url(f"{base}/access/grants/{world.grant.pk}/?path=a.png&modality=endoscopy&subject=")
    links = holder.get_by_test_id("grant-files").get_by_test_id("file-download")
    expect(links).to_have_count(1)
    expect(links).to_have_text("cases/a.png")

    with holder.expect_download() as download:
        links.click()
    assert download.value.suggested_filename == "a.png"
    with open(download.value.path(), "rb") as handle:
        assert handle.read() == CONTENT
    assert list(Download.objects.values_list("user_id", "file__path")) == [(world.user.pk, "cases/a.png")]
