"""Issue 7 in the browser: an approved user runs the endoscopy demo model on an uploaded image.

A company user named on a grant in force on a JGES release (like the demo company) signs in, opens
the AI models, opens the endoscopy organ demo model (its card says demo model, synthetic data, not
for clinical use), opens the run page, uploads a synthetic endoscopy PNG and starts the run. The job
page shows the progress bar and then the result row: the label the model gave, in Japanese, with
its probability and the thumbnail. The run is held back from the task queue so that the page is seen
while the job is pending; the test then runs it (``inference_job_run``, what the Celery task calls),
and the page's htmx poll notices the end and reloads with the results. The real worker is exercised
by tests/ai/test_worker.py.

Elements are found by data-testid, data-* attributes and URLs; the only visible text asserted is the
Japanese label name, which comes from the model card, not from the translation catalogue.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from portal.ai.demo_models import synthetic_png
from portal.ai.models import InferenceItem, InferenceJob
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyFactory,
    UserFactory,
)
from tests.factories.ai import AIModelFactory, published_version
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会",
                             name_en="Japan Gastroenterological Endoscopy Society")
    dataset = DatasetFactory(society=society, slug="jges-endoscopy", modality="endoscopy")
    release = make_release(dataset, [FileSpec(subject="S-1", study_date=date(2024, 4, 1))])
    company = UserFactory(email="company@example.co.jp", full_name="企業 研究者")
    OrganizationMembershipFactory(user=company, organization=OrganizationFactory(kind="company", name_ja="株式会社テスト"))
    active_grant([company], [release])
    model = AIModelFactory(
        society=society, slug="endoscopy-organ", name_ja="内視鏡画像 臓器分類（デモ）",
        name_en="Endoscopy organ classifier (demo)", modality="endoscopy", open_to_grant_holders=True, is_demo=True,
    )
    version = published_version(model, kind="endoscopy-organ", version="1.0.0")
    return {"company": company, "model": model, "version": version}


def test_approved_user_runs_the_endoscopy_demo_model_on_an_upload(page, live_server, setting, monkeypatch):
    from portal.ai import services

    queued: list[int] = []
    monkeypatch.setattr(services.jobs_create, "_queue_run", queued.append)
    base = live_server.url
    version = setting["version"]
    sign_in(page, live_server, setting["company"].email)

    page.goto(f"{base}/ai/")
    page.locator('[data-model="endoscopy-organ"]').get_by_test_id("ai-demo-notice").wait_for()
    page.locator('[data-model="endoscopy-organ"] a[href="/ai/endoscopy-organ/"]').click()
    page.wait_for_url(f"{base}/ai/endoscopy-organ/")
    page.get_by_test_id("ai-demo-notice").first.wait_for()
    page.get_by_test_id("ai-card").wait_for()

    page.get_by_test_id("ai-run").click()
    page.wait_for_url(f"{base}/ai/endoscopy-organ/v/1.0.0/run/")
    page.get_by_test_id("ai-demo-notice").first.wait_for()
    page.locator("input[name=uploads]").set_input_files(
        {"name": "stomach-view.png", "mimeType": "image/png",
         "buffer": synthetic_png("endoscopy-organ", "stomach", 2024)}
    )
    page.get_by_test_id("ai-start").click()

    page.wait_for_url(re.compile(rf"{re.escape(base)}/ai/jobs/\d+/$"))
    page.locator('[data-testid="ai-progress"][data-status="pending"] progress').wait_for()
    page.get_by_test_id("ai-demo-notice").first.wait_for()
    job = InferenceJob.objects.get(user=setting["company"])
    assert queued == [job.pk]
    assert page.locator('tr[data-position="1"][data-status="pending"]').count() == 1

    services.inference_job_run(job_id=job.pk)  # what the worker does; the page polls every 2 s
    row = page.locator('tr[data-position="1"][data-status="succeeded"]')
    row.wait_for()
    job.refresh_from_db()
    item = job.items.get()
    assert job.status == InferenceJob.Status.FINISHED
    assert item.status == InferenceItem.Status.SUCCEEDED
    assert row.get_attribute("data-label") == item.label
    japanese = next(label["ja"] for label in version.labels if label["code"] == item.label)
    assert row.get_by_test_id("ai-label").inner_text().strip() == japanese
    assert row.locator(f'.ai-probabilities__top[data-code="{item.label}"]').count() == 1
    assert "stomach-view.png" in row.inner_text()
    thumbnail = row.get_by_test_id("ai-thumbnail")
    thumbnail.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert page.locator('[data-testid="ai-progress"][data-status="finished"] progress').get_attribute("value") == "100"
    assert page.get_by_test_id("ai-results-csv").get_attribute("href") == f"/ai/jobs/{job.pk}/results.csv"


@pytest.fixture
def demo(transactional_db):  # type: ignore[no-untyped-def]
    import io

    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(PORTAL_DEMO_ALLOWED=True):
        call_command("seed_demo", stdout=io.StringIO())


def test_demo_company_runs_the_pathology_demo_model_it_was_approved_for(page, live_server, demo, monkeypatch):
    """The seeded demo: company@demo.example.jp's light request for the pathology model was approved
    by the JSP admin; it signs in with the demo password, finds the model from the menu, uploads a
    synthetic abnormal tile and sees the result with the demo notice."""
    from django.db import transaction

    from portal.ai import services

    # The worker's part, in this process once the job is committed (CI has a broker but no worker here).
    monkeypatch.setattr(services.jobs_create, "_queue_run", lambda job_id: transaction.on_commit(
        lambda: services.inference_job_run(job_id=job_id)))
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.locator("[name=login]").fill("company@demo.example.jp")
    page.locator("[name=password]").fill("portal-demo-2026")
    page.locator("[name=password]").press("Enter")
    page.get_by_test_id("whoami").wait_for()

    page.locator("nav.main-nav a[href='/ai/']").click()
    page.locator('[data-model="demo-pathology-tile"] a[href="/ai/demo-pathology-tile/"]').click()
    page.get_by_test_id("ai-demo-notice").first.wait_for()
    page.get_by_test_id("ai-run").click()
    page.locator("input[name=uploads]").set_input_files(
        {"name": "tile.png", "mimeType": "image/png", "buffer": synthetic_png("pathology-tile", "abnormal", 77)}
    )
    page.get_by_test_id("ai-start").click()

    page.wait_for_url(re.compile(rf"{re.escape(base)}/ai/jobs/\d+/$"))
    row = page.locator('tr[data-position="1"][data-status="succeeded"]')
    row.wait_for()
    job = InferenceJob.objects.get(user__email="company@demo.example.jp")
    item = job.items.get()
    assert (job.version.model.slug, job.status) == ("demo-pathology-tile", InferenceJob.Status.FINISHED)
    assert row.get_attribute("data-label") == item.label
    assert row.get_by_test_id("ai-label").inner_text().strip() == {"normal": "正常", "abnormal": "異常"}[item.label]
    assert page.get_by_test_id("ai-demo-notice").first.inner_text().strip() == "デモ用モデル・合成データで学習・臨床使用不可"
