"""Item 23 in the browser: a named user stops the research and writes the stop report (中止報告)
with the dataset's citation in each output and the results' registration number; the principal
investigator and the head of the institution each confirm it; the steward accepts it and the grant
ends.

Elements are found by data-testid, form field names and URLs; no visible text is asserted.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from portal.access.models import Grant, UsageReport
from portal.access.services.records import provision_record_create, usage_reports_schedule
from tests.factories import (
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import granted_request
from tests.factories.datasets import DatasetFactory, FileSpec, make_release
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会", name_en="JGES")
    steward = UserFactory(email="steward@jges.example.jp")
    SocietyMembershipFactory(society=society, user=steward, role="steward")
    give_totp(steward)
    dataset = DatasetFactory(society=society, slug="colon")
    release = make_release(dataset, [FileSpec("a" * 32)], store=False)
    pi = UserFactory(email="pi@company.example.co.jp")
    co = UserFactory(email="co@company.example.co.jp")
    request, grant = granted_request([pi, co], [release], society=society, days=800)
    head = UserFactory(email="head@company.example.co.jp")
    OrganizationMembershipFactory(user=head, organization=request.organization, role="head")
    provision_record_create(grant=grant)
    usage_reports_schedule(grant=grant)
    return {"grant": grant, "pi": pi, "co": co, "head": head, "steward": steward}


def test_stop_report_written_confirmed_twice_and_accepted(open_page, live_server, setting):
    from playwright.sync_api import expect

    base, grant = live_server.url, setting["grant"]

    # A co-investigator named on the grant says the research stopped, then writes the report.
    co = open_page()
    sign_in(co, live_server, setting["co"].email)
    co.goto(f"{base}/access/reports/stop/{grant.pk}/")
    co.get_by_test_id("report-stop-form").locator("[name=reason]").fill("共同研究契約の解除により中止")
    co.get_by_test_id("report-stop-form").locator("button[type=submit]").click()
    stop = UsageReport.objects.get(grant=grant, kind=UsageReport.Kind.STOP)
    expect(co).to_have_url(f"{base}/access/reports/{stop.pk}/submit/")
    expect(co.get_by_test_id("dataset-citations")).to_contain_text("（colon）")
    form = co.get_by_test_id("report-form")
    expect(form.locator("[name=stop_reason]")).to_have_value("共同研究契約の解除により中止")
    form.locator("[name=progress]").fill("120症例を解析した。")
    form.locator("[name=deviations]").fill("なし")
    form.locator("[name=user_changes]").fill("なし")
    form.locator("[name=security_recheck]").fill("チェックリストを再確認した。")
    form.locator("[name=results_summary]").fill("中間解析で感度85%。")
    form.locator("[name=output_1_kind]").select_option("presentation")
    form.locator("[name=output_1_title]").fill("中間報告")
    # First without the dataset in the citation: refused, nothing saved.
    form.locator("[name=output_1_citation]").fill("謝辞なし")
    form.locator("[name=registry_number]").fill("UMIN000012345")
    form.locator("[name=deletion_date]").fill(timezone.localdate().isoformat())
    form.locator("[name=deletion_method]").fill("暗号化ディスクを消去した。")
    form.locator("[name=deletion_certificate]").set_input_files(
        {"name": "c.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES})
    form.locator("button[type=submit]").click()
    expect(co.get_by_test_id("report-form")).to_be_visible()
    stop.refresh_from_db()
    assert stop.status == UsageReport.Status.DUE
    form = co.get_by_test_id("report-form")
    form.locator("[name=output_1_citation]").fill("日本消化器内視鏡学会 大腸内視鏡画像データセット（colon）v1")
    form.locator("[name=deletion_certificate]").set_input_files(
        {"name": "c.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES})
    form.locator("button[type=submit]").click()
    expect(co).to_have_url(f"{base}/access/reports/{stop.pk}/")
    expect(co.get_by_test_id("registry-number")).to_have_text("UMIN000012345")
    expect(co.get_by_test_id("report-confirm-form")).to_have_count(0)  # neither the PI nor the head

    # The principal investigator and the head each confirm it.
    for key, role in (("pi", "pi"), ("head", "head")):
        page = open_page()
        sign_in(page, live_server, setting[key].email)
        page.goto(f"{base}/access/reports/{stop.pk}/")
        page.get_by_test_id(f"report-confirm-{role}").click()
        expect(page.get_by_test_id(f"{role}-confirmation")).not_to_have_text("")
        expect(page.get_by_test_id("report-confirm-form")).to_have_count(0)
    stop.refresh_from_db()
    assert (stop.status, stop.pi_confirmed_by, stop.head_confirmed_by) == (
        UsageReport.Status.CONFIRMED, setting["pi"], setting["head"])

    # The steward accepts it: the grant ends and no other report is owed.
    steward = open_page()
    sign_in(steward, live_server, setting["steward"].email, totp=True)
    steward.goto(f"{base}/access/reports/{stop.pk}/")
    steward.get_by_test_id("report-accept-form").locator("button[type=submit]").click()
    expect(steward.get_by_test_id("report-accept-form")).to_have_count(0)
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ENDED
    assert list(UsageReport.objects.filter(grant=grant).values_list("kind", "status")) == [("stop", "accepted")]
