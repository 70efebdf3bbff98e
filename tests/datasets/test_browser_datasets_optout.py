"""Issue 4 in the browser: a society admin publishes a dataset and an opt-out notice; a visitor
without an account finds both.

The admin signs in with the second factor, creates a dataset through the form, sees that it cannot
be published while no opt-out notice covers it, writes and publishes a notice covering it, publishes
the dataset and uploads a small release. A visitor in a fresh browser, not signed in, starts at the
home page and finds the notice, then the dataset in the catalogue and the notice linked from it.

Elements are found by data-testid, form field names and URLs; the Japanese text asserted is the
portal's own wording (the UI is Japanese whatever the browser asks for) or what the admin typed.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from portal.datasets.models import Dataset, DatasetRelease, DatasetStatus
from portal.lib.pseudonym import subject_pseudonym
from portal.optout.models import OptOutNotice
from tests.factories import (
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.ethics import permitted_protocol
from tests.factories.manifests import PNG
from tests.support.browser import open_menu, sign_in

pytestmark = [pytest.mark.browser]

SLUG = "jges-gastric-endoscopy"
TITLE = "上部消化管内視鏡画像（胃がん）"
NOTICE_TITLE = "上部消化管内視鏡画像を用いた胃がん診断支援AI研究に関するお知らせ"
# Every item of the notice (guideline 第8の6), as the society admin writes it in Japanese.
NOTICE_ITEMS = {
    "purpose_and_method": "胃がんの早期発見を支援するAIを開発するため、内視鏡画像を学会で収集し研究者に提供します。",
    "data_items": "内視鏡画像、撮影日、病理診断名（氏名・患者IDは含みません）",
    "providing_org_and_head": "研究大学病院（病院長 山田 一郎）",
    "acquisition_method": "診療の過程で撮影された画像を各病院から収集しました。",
    "pi_and_org": "研究責任者 佐藤 花子（日本消化器内視鏡学会）",
    "user_scope": "倫理審査委員会の承認を受け、学会の審査を経た研究機関・企業の研究者",
    "data_controller": "日本消化器内視鏡学会 データ管理委員会",
    "stop_on_request": "ご本人または代理人の求めに応じて、利用または他機関への提供を停止します。",
    "how_to_request": "受診された病院の窓口、または下記の問い合わせ先にお申し出ください。",
    "foreign_provision_info": "外国にある第三者への提供は行いません。",
    "contact": "日本消化器内視鏡学会 事務局 電話 03-0000-0000",
}


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会", name_en="Japan Gastroenterological Endoscopy Society")
    admin = UserFactory(email="admin@jges.example.jp", full_name="学会 管理者")
    SocietyMembershipFactory(society=society, user=admin, role="admin")
    give_totp(admin)
    protocol = permitted_protocol()
    return {"society": society, "admin": admin, "protocol": protocol}


def _release_folder(folder: Path) -> tuple[list[Path], Path, list[str]]:
    """Two small PNG files and their manifest; the file names carry no pseudonym."""
    folder.mkdir()
    subjects = [subject_pseudonym(institution_code="H001", patient_id=f"P-{n:04d}") for n in (1, 2)]
    images = []
    for index in (1, 2):
        image = folder / f"img-{index:03d}.png"
        image.write_bytes(PNG + bytes([index]) * 16)
        images.append(image)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject_pseudonym", "study_date", "modality", "annotation_path"])
        writer.writerow([images[0].name, subjects[0], "2023-05-10", "endoscopy", ""])
        writer.writerow([images[1].name, subjects[1], "2023-06-20", "endoscopy", ""])
    for subject in subjects:
        assert all(subject not in image.name for image in images)
    return images, manifest, subjects


def test_admin_publishes_dataset_and_notice_visitor_finds_both(open_page, live_server, setting, tmp_path):
    from playwright.sync_api import expect

    protocol = setting["protocol"]
    base = live_server.url

    # --- The society admin signs in with the second factor and opens データセットの管理. ---------
    admin = open_page()
    sign_in(admin, live_server, setting["admin"].email, totp=True)
    assert admin.locator("html").get_attribute("lang") == "ja"
    open_menu(admin, "society")
    manage_link = admin.locator("nav.main-nav a[href='/manage/datasets/']")
    expect(manage_link).to_have_text("データセットの管理")
    manage_link.click()
    expect(admin).to_have_url(f"{base}/manage/datasets/")
    expect(admin.locator("h1")).to_have_text("データセットの管理")

    # Creates a dataset through the form, every field filled in, resting on the permitted protocol.
    admin.get_by_test_id("dataset-create").click()
    form = admin.get_by_test_id("dataset-form")
    assert form.locator("[name=society]").input_value() == str(setting["society"].pk)
    form.locator("[name=slug]").fill(SLUG)
    form.locator("[name=title_ja]").fill(TITLE)
    form.locator("[name=title_en]").fill("Upper GI endoscopy images (gastric cancer)")
    form.locator("[name=description_ja]").fill("会員施設で撮影された上部消化管内視鏡画像と病理診断名。")
    form.locator("[name=description_en]").fill("Upper GI endoscopy images with their pathological diagnoses.")
    form.locator("[name=modality]").select_option("endoscopy")
    form.locator("[name=body_part]").fill("胃")
    form.locator("[name=disease_areas]").fill("胃がん, 胃腺腫")
    form.locator("[name=annotation_granularity]").select_option("diagnosis")
    form.locator("[name=annotation_format]").fill("CSV")
    form.locator("[name=case_count]").fill("2")
    form.locator("[name=image_count]").fill("2")
    form.locator("[name=collection_start]").fill("2022-04-01")
    form.locator("[name=collection_end]").fill("2024-03-31")
    form.locator("[name=legal_status]").select_option("pseudonymised")
    form.locator("[name=protocol]").select_option(str(protocol.pk))
    form.locator("[name=access_tier]").select_option("controlled")
    admin.get_by_test_id("dataset-save").click()

    # Wait for the redirect before reading the database: the click does not wait for the server.
    expect(admin).to_have_url(re.compile(r"/manage/datasets/\d+/$"))
    dataset = Dataset.objects.get(slug=SLUG)
    assert admin.url == f"{base}/manage/datasets/{dataset.pk}/"
    expect(admin.get_by_test_id("dataset-title")).to_have_text(TITLE)
    expect(admin.get_by_test_id("dataset-status")).to_have_attribute("data-status", DatasetStatus.DRAFT)
    assert (dataset.society, dataset.protocol, dataset.status) == (setting["society"], protocol, DatasetStatus.DRAFT)

    # The readiness checklist says it cannot be published yet: no opt-out notice covers it.
    readiness = admin.get_by_test_id("publish-readiness")
    expect(readiness.locator("h2")).to_have_text("公開の条件")
    protocol_check = readiness.locator("li").nth(0)
    notice_check = readiness.locator("li", has_text="公開中のオプトアウト文書がデータセットを対象としている")
    expect(protocol_check).to_have_attribute("data-ok", "yes")
    expect(notice_check).to_have_attribute("data-ok", "no")
    expect(notice_check).to_contain_text("このデータセットを対象とする公開中のオプトアウト文書はありません。")
    # Trying anyway is refused with that reason, and nothing changes.
    admin.get_by_test_id("dataset-publish").click()
    expect(admin.locator(".messages")).to_contain_text("このデータセットを対象とする公開中のオプトアウト文書はありません。")
    expect(admin.get_by_test_id("dataset-status")).to_have_attribute("data-status", DatasetStatus.DRAFT)
    dataset.refresh_from_db()
    assert (dataset.status, dataset.published_at) == (DatasetStatus.DRAFT, None)

    # --- The admin writes an opt-out notice covering the dataset, every item filled in. --------
    open_menu(admin, "society")
    notices_link = admin.locator("nav.main-nav a[href='/manage/optout/notices/']")
    expect(notices_link).to_have_text("オプトアウト文書の管理")
    notices_link.click()
    expect(admin).to_have_url(f"{base}/manage/optout/notices/")
    admin.get_by_test_id("notice-create").click()
    form = admin.get_by_test_id("notice-form")
    assert form.locator("[name=society]").input_value() == str(setting["society"].pk)
    form.locator("[name=protocol]").select_option(str(protocol.pk))
    form.locator(f"[name=datasets][value='{dataset.pk}']").check()
    form.locator("[name=title_ja]").fill(NOTICE_TITLE)
    form.locator("[name=title_en]").fill("Research on AI support for gastric cancer diagnosis from endoscopy images")
    for key, text in NOTICE_ITEMS.items():
        form.locator(f"[name={key}_ja]").fill(text)
    form.locator("[name=start_date]").fill("2025-04-01")
    form.locator("[name=end_date]").fill("2030-03-31")
    admin.get_by_test_id("save-notice").click()

    expect(admin).to_have_url(re.compile(r"/manage/optout/notices/\d+/$"))
    notice = OptOutNotice.objects.get(society=setting["society"])
    assert admin.url == f"{base}/manage/optout/notices/{notice.pk}/"
    expect(admin.get_by_test_id("notice-status")).to_have_text("作成中")
    expect(admin.get_by_test_id("publish-problems")).to_have_count(0)
    preview = admin.get_by_test_id("preview")
    expect(preview.locator("h3")).to_have_text(NOTICE_TITLE)
    expect(preview).to_contain_text(TITLE)  # the datasets covered
    admin.get_by_test_id("publish").click()
    expect(admin.locator(".messages")).to_contain_text("文書を公開しました。")
    expect(admin.get_by_test_id("notice-status")).to_have_text("公開")
    notice.refresh_from_db()
    assert notice.status == OptOutNotice.Status.PUBLISHED
    assert list(notice.datasets.all()) == [dataset]

    # --- Back to the dataset: now it can be published. ----------------------------------------
    open_menu(admin, "society")
    admin.locator("nav.main-nav a[href='/manage/datasets/']").click()
    admin.locator(f"tr[data-dataset='{SLUG}'] a").click()
    expect(admin).to_have_url(f"{base}/manage/datasets/{dataset.pk}/")
    readiness = admin.get_by_test_id("publish-readiness")
    expect(readiness.locator("li[data-ok=no]")).to_have_count(0)
    expect(readiness).to_contain_text("このデータセットを対象とする公開中のオプトアウト文書があります。")
    admin.get_by_test_id("dataset-publish").click()
    expect(admin.locator(".messages")).to_contain_text("データセットを公開しました。")
    expect(admin.get_by_test_id("dataset-status")).to_have_attribute("data-status", DatasetStatus.PUBLISHED)
    expect(admin.get_by_test_id("dataset-status")).to_have_text("公開")
    dataset.refresh_from_db()
    assert dataset.status == DatasetStatus.PUBLISHED
    assert dataset.published_at is not None

    # And uploads a small release: two PNG files and their manifest.
    images, manifest, subjects = _release_folder(tmp_path / "upload")
    admin.get_by_test_id("release-upload").click()
    upload = admin.get_by_test_id("release-upload-form")
    upload.locator("[name=files]").set_input_files([str(image) for image in images])
    upload.locator("[name=manifest]").set_input_files(str(manifest))
    upload.locator("[name=notes_ja]").fill("初回リリース")
    upload.locator("button[type=submit]").click()
    expect(admin).to_have_url(re.compile(r"/manage/datasets/releases/\d+/$"))
    release = DatasetRelease.objects.get(dataset=dataset)
    assert admin.url == f"{base}/manage/datasets/releases/{release.pk}/"
    expect(admin.get_by_test_id("release-status")).to_have_attribute("data-status", DatasetRelease.Status.AVAILABLE)
    expect(admin.get_by_test_id("release-file-count")).to_have_text("2")
    expect(admin.get_by_test_id("release-excluded")).to_have_text("0")
    expect(admin.get_by_test_id("manifest")).to_contain_text("img-001.png")
    assert (release.version, release.file_count, release.case_count) == (1, 2, 2)
    assert sorted(release.files.values_list("subject_pseudonym", flat=True)) == sorted(subjects)

    # --- A visitor without an account, in a fresh browser, starts at the home page. -----------
    visitor = open_page()
    visitor.goto(f"{base}/")
    assert visitor.locator("html").get_attribute("lang") == "ja"
    expect(visitor.get_by_test_id("whoami")).to_have_count(0)
    visitor.get_by_test_id("home-optout-link").click()
    expect(visitor).to_have_url(f"{base}/optout/")
    expect(visitor.locator("h1")).to_have_text("オプトアウト文書（情報公開文書）")
    listed = visitor.get_by_test_id("public-notices").locator(f"li[data-notice='{notice.reference}']")
    expect(listed).to_contain_text("日本消化器内視鏡学会")
    listed.locator("a").click()
    expect(visitor).to_have_url(f"{base}/optout/{notice.reference}/")
    expect(visitor.locator("h1")).to_have_text(NOTICE_TITLE)
    items = visitor.get_by_test_id("notice-items")
    for key, text in NOTICE_ITEMS.items():
        expect(items.locator(f"dt[data-item={key}] + dd")).to_have_text(text)
    expect(visitor.locator("section[aria-labelledby=datasets-heading]")).to_contain_text(TITLE)
    expect(visitor.locator("#datasets-heading")).to_have_text("この文書の対象データセット")

    # From the home page to the catalogue; a search finds the dataset.
    visitor.locator("a.brand").click()
    expect(visitor).to_have_url(f"{base}/")
    visitor.get_by_test_id("home-catalogue-link").click()
    expect(visitor).to_have_url(f"{base}/datasets/")
    expect(visitor.locator("h1")).to_have_text("データセット一覧")
    search = visitor.locator("form[role=search]")
    search.locator("[name=q]").fill("胃がん")
    search.locator("[name=modality]").select_option("endoscopy")
    search.locator("button[type=submit]").click()
    expect(visitor).to_have_url(re.compile(r"/datasets/\?q=%E8%83%83%E3%81%8C%E3%82%93&.*modality=endoscopy"))
    rows = visitor.get_by_test_id("catalogue").locator("tbody tr[data-slug]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-slug", SLUG)
    # A filter that excludes it shows nothing.
    search.locator("[name=modality]").select_option("ct")
    search.locator("button[type=submit]").click()
    expect(visitor.get_by_test_id("catalogue").locator("tbody tr[data-slug]")).to_have_count(0)
    search.locator("[name=modality]").select_option("endoscopy")
    search.locator("button[type=submit]").click()
    visitor.get_by_test_id("catalogue").locator(f"tr[data-slug='{SLUG}'] a").click()

    # The dataset's page: its facts, its release, and the opt-out notice that covers it.
    expect(visitor).to_have_url(f"{base}/datasets/{SLUG}/")
    expect(visitor.locator("h1")).to_have_text(TITLE)
    expect(visitor.get_by_test_id("dataset-facts")).to_contain_text(protocol.number)
    expect(visitor.get_by_test_id("releases").locator("tr[data-version='1']")).to_have_count(1)
    body = visitor.content()
    assert all(subject not in body for subject in subjects)  # pseudonyms are never public
    assert "img-001.png" not in body
    notice_link = visitor.get_by_test_id("notices").locator("a")
    expect(notice_link).to_have_count(1)
    expect(notice_link).to_have_text(NOTICE_TITLE)
    notice_link.click()
    expect(visitor).to_have_url(f"{base}/optout/{notice.reference}/")
    expect(visitor.locator("h1")).to_have_text(NOTICE_TITLE)
    expect(visitor.get_by_test_id("whoami")).to_have_count(0)
