"""Issue 5 in the browser: a company applies for data, the society approves, both sign, the company
downloads a file and its SHA-256 matches the manifest.

A company user signs in, starts an application, fills every section (team with research-ethics
training, ethics approval, purpose and legal basis with the joint-research agreement, the release,
environment, period, every item of the security self-assessment), saves and submits it. The
society's data steward (second factor) finds it in the screening queue and passes it to the data
access committee; two committee members vote to approve and the second records the decision. The
company user, who is also the authorised signatory, signs on the signing page that shows the
society's terms side by side; the society admin countersigns from their queue, and the application
is granted. The company user opens the grant, downloads the release's manifest (TSV, and the same
as JSON), downloads both files through their signed links and checks each SHA-256 against the
manifest and the bytes stored.

Elements are found by data-testid, form field names, data-* attributes and URLs; no visible text of
the new pages is asserted (their Japanese catalogue is merged later).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from portal.access.models import (
    AccessRequest,
    CommitteeVote,
    Download,
    Grant,
    RequestStatus,
    SocietyReview,
)
from portal.access.security_items import SECURITY_ITEMS
from portal.agreements.models import SignedAgreement
from portal.datasets.models import DatasetStatus
from portal.ethics.models import Protocol
from portal.lib.pseudonym import subject_pseudonym
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import agreement_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice
from tests.factories.ethics import permitted_protocol
from tests.factories.manifests import PNG
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser]

TITLE = "内視鏡画像を用いた早期胃がん検出AIの製品開発"
# The two files of the release, with known bytes.
FILES = {
    "images/img-001.png": PNG + b"\x01" * 32 + "胃体部".encode(),
    "images/img-002.png": PNG + b"\x02" * 48 + "前庭部".encode(),
}


@pytest.fixture
def setting(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tmp_path / "storage"}}}
    society = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会",
                             name_en="Japan Gastroenterological Endoscopy Society")
    people: dict[str, Any] = {}
    for key, email, name, role in (
        ("admin", "admin@jges.example.jp", "学会 管理者", "admin"),
        ("steward", "steward@jges.example.jp", "データ 管理者", "steward"),
        ("member1", "dac1@jges.example.jp", "委員 一郎", "access_committee"),
        ("member2", "dac2@jges.example.jp", "委員 二郎", "access_committee"),
    ):
        user = UserFactory(email=email, full_name=name)
        SocietyMembershipFactory(society=society, user=user, role=role)
        give_totp(user)
        people[key] = user

    dataset = DatasetFactory(society=society, slug="jges-gastric", title_ja="上部消化管内視鏡画像（胃がん）",
                             status=DatasetStatus.PUBLISHED, published_at=timezone.now())
    subjects = [subject_pseudonym(institution_code="H001", patient_id=f"P-{n:04d}") for n in (1, 2)]
    release = make_release(dataset, [
        FileSpec(subject=subject, study_date=date(2023, 5, 10 + index), content=content, path=path)
        for index, (subject, (path, content)) in enumerate(zip(subjects, FILES.items(), strict=True))
    ])
    published_notice(dataset)
    version = agreement_version(
        society, commercial_use_allowed=True, fee_jpy=0, term_months=12,
        publication_duties_ja="成果の公表前に学会へ通知する。", fee_terms_ja="無償。",
        security_obligations_ja="3省2ガイドラインに準拠した環境で利用する。", benefit_sharing_ja="協議による。",
    )

    company = OrganizationFactory(kind="company", name_ja="画像解析株式会社", name_en="Image Analysis KK")
    applicant = UserFactory(email="ceo@imaging.example.co.jp", full_name="代表 花子")
    OrganizationMembershipFactory(user=applicant, organization=company)
    colleague = UserFactory(email="engineer@imaging.example.co.jp", full_name="技術 次郎")
    OrganizationMembershipFactory(user=colleague, organization=company)
    protocol = permitted_protocol()
    Protocol.objects.filter(pk=protocol.pk).update(principal_investigator=applicant)
    return {"society": society, "dataset": dataset, "release": release, "version": version, "company": company,
            "applicant": applicant, "colleague": colleague, "protocol": protocol, **people}


def _fill_application(form, setting) -> None:  # type: ignore[no-untyped-def]
    """Every section of the application, as the company user answers it."""
    applicant = setting["applicant"]
    today = timezone.localdate()
    # Applicant and team: the user signs for the company and is the one named user, trained.
    team = form.locator("fieldset[data-section=team]")
    assert team.locator("[name=organization]").input_value() == str(setting["company"].pk)
    team.locator("[name=principal_investigator_email]").fill(applicant.email)
    team.locator("[name=signatory_email]").fill(applicant.email)
    # The PI's title, researcher number and record (a6), and the head of the company.
    team.locator("[name=pi_title]").fill("主任研究員")
    team.locator("[name=pi_researcher_number_kind]").select_option("erad")
    team.locator("[name=pi_researcher_number]").fill("12345678")
    team.locator("[name=pi_research_record]").fill("Gastric Cancer 2024;27:1-10")
    head = form.locator("fieldset[data-section=head]")
    head.locator("[name=head_name]").fill("画像 社長")
    head.locator("[name=head_title]").fill("代表取締役")
    head.locator("[name=head_email]").fill("head@company.example.co.jp")
    rows = form.get_by_test_id("named-user-rows")
    rows.locator("[name=user_0_email]").fill(applicant.email)
    rows.locator("[name=user_0_role]").select_option("principal")
    rows.locator("[name=user_0_training]").select_option("yes")
    rows.locator("[name=user_0_training_date]").fill((today - timedelta(days=30)).isoformat())
    # Ethics approval: the protocol permitted in the portal.
    approvals = form.locator("fieldset[data-section=approvals]")
    approvals.locator("[name=ethics_protocol]").select_option(str(setting["protocol"].pk))
    # Purpose and legal basis: product development under joint use, with the joint-research agreement.
    purpose = form.locator("fieldset[data-section=purpose]")
    assert purpose.locator("[name=title]").input_value() == TITLE
    purpose.locator("[name=summary]").fill("内視鏡画像から早期胃がんを検出するAIを開発し、医療機器として承認申請する。")
    purpose.locator("[name=purpose]").select_option("product_development")
    purpose.locator("[name=expected_outputs][value=ai_model]").check()
    purpose.locator("[name=expected_outputs][value=samd]").check()
    purpose.locator("[name=legal_basis]").select_option("joint_use")
    purpose.locator("[name=joint_research_number]").fill("JR-2025-017")
    purpose.locator("[name=joint_research_parties]").fill("日本消化器内視鏡学会、画像解析株式会社")
    purpose.locator("[name=joint_research_date]").fill((today - timedelta(days=60)).isoformat())
    # Data requested: the release, pseudonymised.
    data = form.locator("fieldset[data-section=data]")
    data.locator(f"[name=releases][value='{setting['release'].pk}']").check()
    data.locator("[name=processing_level]").select_option("pseudonymised")
    # Environment: downloaded to the company's own premises, no access from abroad.
    environment = form.locator("fieldset[data-section=environment]")
    environment.locator("[name=environment]").select_option("on_premise")
    environment.locator("[name=security_level]").select_option("type_2")
    period = form.locator("fieldset[data-section=period]")
    period.locator("[name=period_start]").fill(today.isoformat())
    period.locator("[name=period_end]").fill((today + timedelta(days=365)).isoformat())
    # Every item of the security self-assessment.
    security = form.locator("fieldset[data-section=security]")
    for item in SECURITY_ITEMS:
        row = security.locator(f"tr[data-item={item.key}]")
        if item.key == "approved_external_server":
            row.locator(f"[name=sec_{item.key}_status]").select_option("not_applicable")
            row.locator(f"[name=sec_{item.key}_comment]").fill("機関外サーバは使用しない。")
        else:
            row.locator(f"[name=sec_{item.key}_status]").select_option("done")
            row.locator(f"[name=sec_{item.key}_evidence]").fill(f"情報セキュリティ規程 {item.key}")


def test_company_applies_is_approved_signs_and_downloads(open_page, live_server, setting):
    from playwright.sync_api import expect

    base = live_server.url
    society, release = setting["society"], setting["release"]

    # --- The company user signs in (no second factor needed) and starts an application. --------
    company = open_page()
    sign_in(company, live_server, setting["applicant"].email)
    assert company.locator("html").get_attribute("lang") == "ja"
    company.goto(f"{base}/access/requests/")
    company.get_by_test_id("request-create").click()
    expect(company).to_have_url(f"{base}/access/requests/new/")
    create = company.get_by_test_id("request-create-form")
    assert create.locator("[name=organization]").input_value() == str(setting["company"].pk)
    create.locator("[name=title]").fill(TITLE)
    create.locator("button[type=submit]").click()
    expect(company).to_have_url(re.compile(r"/access/requests/\d+/edit/$"))
    access_request = AccessRequest.objects.get(title=TITLE)
    assert company.url == f"{base}/access/requests/{access_request.pk}/edit/"
    assert (access_request.status, access_request.applicant, access_request.organization) == (
        RequestStatus.DRAFT, setting["applicant"], setting["company"])

    # Fills every section and saves the draft; the answers come back in the form.
    form = company.get_by_test_id("request-form")
    _fill_application(form, setting)
    company.get_by_test_id("request-save").click()
    expect(company.locator(".messages .message--success")).to_have_count(1)
    expect(company.get_by_test_id("form-errors")).to_have_count(0)
    form = company.get_by_test_id("request-form")
    expect(form.locator("[name=legal_basis]")).to_have_value("joint_use")
    expect(form.locator(f"[name=releases][value='{release.pk}']")).to_be_checked()
    expect(form.locator("[name=sec_storage_encryption_status]")).to_have_value("done")
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.DRAFT
    assert access_request.security_answers.count() == len(SECURITY_ITEMS)
    assert list(access_request.named_users.values_list("user__email", "role", "ethics_training")) == [
        (setting["applicant"].email, "principal", True)]

    # Submits it: the application gets its number and waits for the steward.
    company.get_by_test_id("request-submit").click()
    expect(company).to_have_url(f"{base}/access/requests/{access_request.pk}/")
    expect(company.get_by_test_id("request-status")).to_have_attribute("data-status", RequestStatus.SUBMITTED)
    access_request.refresh_from_db()
    assert re.fullmatch(r"DAR-\d{4}-\d{5}", access_request.reference)
    expect(company.get_by_test_id("request-reference")).to_have_text(access_request.reference)
    expect(company.get_by_test_id("society-reviews").locator("tr[data-society=jges]")).to_have_attribute(
        "data-status", SocietyReview.Status.SCREENING)
    expect(company.get_by_test_id("request-missing")).to_have_count(0)
    expect(company.get_by_test_id("security-level")).to_have_text("ハイレベル（Type II）")
    expect(company.get_by_test_id("pi-researcher-number")).to_have_text("e-Rad 研究者番号 12345678")

    # --- The data steward signs in with the second factor and screens it through. --------------
    steward = open_page()
    sign_in(steward, live_server, setting["steward"].email, totp=True)
    steward.goto(f"{base}/access/steward/")
    queued = steward.get_by_test_id("steward-queue").locator(f"tr[data-request='{access_request.pk}']")
    expect(queued).to_contain_text(access_request.reference)
    queued.locator("a").click()
    expect(steward).to_have_url(f"{base}/access/steward/requests/{access_request.pk}/{society.pk}/")
    expect(steward.get_by_test_id("review-status")).to_have_attribute("data-status", SocietyReview.Status.SCREENING)
    # The steward sees the whole self-assessment, every item answered.
    assessment = steward.get_by_test_id("security-assessment")
    expect(assessment.locator("tr[data-item]")).to_have_count(len(SECURITY_ITEMS))
    expect(assessment.locator("tr[data-item=storage_encryption]")).to_contain_text("情報セキュリティ規程 storage_encryption")
    screen = steward.get_by_test_id("screen-form")
    screen.locator("[name=comment]").fill("セキュリティ自己点検・倫理審査承認を確認済み。")
    screen.locator("button[type=submit]").click()
    expect(steward.get_by_test_id("review-status")).to_have_attribute("data-status", SocietyReview.Status.COMMITTEE)
    expect(steward.get_by_test_id("screen-form")).to_have_count(0)
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.COMMITTEE_REVIEW

    # --- Each committee member votes to approve; the second records the decision. --------------
    for key in ("member1", "member2"):
        member = open_page()
        sign_in(member, live_server, setting[key].email, totp=True)
        member.goto(f"{base}/access/committee/")
        row = member.get_by_test_id("committee-inbox").locator(f"tr[data-request='{access_request.pk}']")
        expect(row).to_contain_text(access_request.reference)
        row.locator("a").click()
        expect(member).to_have_url(f"{base}/access/committee/requests/{access_request.pk}/{society.pk}/")
        vote = member.get_by_test_id("vote-form")
        vote.locator("[name=vote]").select_option(CommitteeVote.Vote.APPROVE)
        vote.locator("[name=comment]").fill("目的・体制ともに妥当。")
        vote.locator("button[type=submit]").click()
        expect(member.locator(".messages .message--success")).to_have_count(1)
        expect(member.get_by_test_id("votes").locator("li")).to_have_count(1 if key == "member1" else 2)
    decision = member.get_by_test_id("decision-form")
    decision.locator("[name=outcome]").select_option(SocietyReview.Status.APPROVED)
    decision.locator("[name=reasons]").fill("委員2名の承認により承認する。")
    decision.locator("button[type=submit]").click()
    expect(member.get_by_test_id("review-status")).to_have_attribute("data-status", SocietyReview.Status.APPROVED)
    expect(member.get_by_test_id("decided")).to_contain_text("委員2名の承認により承認する。")
    review = SocietyReview.objects.get(access_request=access_request, society=society)
    assert (review.status, review.decided_by) == (SocietyReview.Status.APPROVED, setting["member2"])
    assert sorted(review.votes.values_list("member__email", "vote")) == [
        (setting["member1"].email, "approve"), (setting["member2"].email, "approve")]
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.APPROVED

    # --- The company user, the authorised signatory, signs with the terms side by side. --------
    company.goto(f"{base}/access/requests/{access_request.pk}/")
    expect(company.get_by_test_id("request-status")).to_have_attribute("data-status", RequestStatus.APPROVED)
    company.get_by_test_id("request-sign").click()
    expect(company).to_have_url(f"{base}/access/requests/{access_request.pk}/sign/")
    terms = company.get_by_test_id("terms-side-by-side")
    expect(terms.locator("thead th")).to_have_count(2)  # the term, and the one approving society
    expect(terms.locator("thead th").nth(1)).to_contain_text("日本消化器内視鏡学会")
    expect(terms.locator("tr[data-term=commercial_use_allowed]")).to_have_count(1)
    expect(terms.locator("tr[data-term=publication_duties_ja] td")).to_have_text("成果の公表前に学会へ通知する。")
    expect(company.get_by_test_id("terms-conflicts")).to_have_count(0)  # commercial use is allowed
    expect(company.get_by_test_id("approving-societies").locator("li")).to_have_count(1)
    sign = company.get_by_test_id("sign-form")
    sign.locator("[name=signatory_name]").fill("代表 花子")
    sign.locator("[name=signatory_title]").fill("代表取締役")
    sign.locator("[name=agree]").check()
    sign.locator("button[type=submit]").click()
    expect(company).to_have_url(f"{base}/access/requests/{access_request.pk}/")
    expect(company.get_by_test_id("request-status")).to_have_attribute("data-status", RequestStatus.SIGNED)
    agreement = SignedAgreement.objects.get(access_request=access_request, society=society)
    assert (agreement.status, agreement.template_version, agreement.signatory_name, agreement.signatory_title) == (
        SignedAgreement.Status.SIGNED, setting["version"], "代表 花子", "代表取締役")
    assert agreement.terms["commercial_use_allowed"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", agreement.pdf_sha256)

    # --- The society admin countersigns from their queue; access is granted. -------------------
    admin = open_page()
    sign_in(admin, live_server, setting["admin"].email, totp=True)
    admin.goto(f"{base}/access/steward/")
    waiting = admin.get_by_test_id("countersign-queue").locator(
        f"a[href='/access/steward/requests/{access_request.pk}/{society.pk}/countersign/']")
    expect(waiting).to_have_text(access_request.reference)
    waiting.click()
    expect(admin.get_by_test_id("agreement-facts")).to_contain_text("代表 花子 (代表取締役)")
    countersign = admin.get_by_test_id("countersign-form")
    countersign.locator("[name=countersigner_name]").fill("学会 管理者")
    countersign.locator("[name=countersigner_title]").fill("理事長")
    countersign.locator("[name=record_custodian][value=recipient]").check()  # custody delegated (a5)
    countersign.locator("button[type=submit]").click()
    expect(admin).to_have_url(f"{base}/access/requests/{access_request.pk}/")
    expect(admin.get_by_test_id("request-status")).to_have_attribute("data-status", RequestStatus.GRANTED)
    access_request.refresh_from_db()
    agreement.refresh_from_db()
    assert access_request.status == RequestStatus.GRANTED
    assert (agreement.status, agreement.countersigned_by, agreement.countersigner_title) == (
        SignedAgreement.Status.COMPLETED, setting["admin"], "理事長")
    grant = Grant.objects.get(access_request=access_request)
    assert (grant.society, grant.status) == (society, Grant.Status.ACTIVE)
    assert list(grant.users.all()) == [setting["applicant"]]
    assert list(grant.releases.all()) == [release]
    assert (grant.provision_record.custodian, grant.provision_record.custodian_name) == (
        "recipient", setting["company"].name_ja)

    # The company user sees the application granted.
    company.reload()
    expect(company.get_by_test_id("request-status")).to_have_attribute("data-status", RequestStatus.GRANTED)

    # --- The company user opens the grant and downloads the manifest and the files. ------------
    company.goto(f"{base}/access/grants/")
    company.get_by_test_id("grants").locator(f"tr[data-grant='{grant.pk}'] a").click()
    expect(company).to_have_url(f"{base}/access/grants/{grant.pk}/")
    expect(company.get_by_test_id("grant-reasons")).to_have_count(0)
    expect(company.get_by_test_id("grant-facts")).to_contain_text(setting["applicant"].email)
    row = company.get_by_test_id("grant-releases").locator(f"tr[data-release='{release.pk}']")
    with company.expect_download() as tsv_download:
        row.locator("a[href$='/manifest.tsv']").click()
    assert tsv_download.value.suggested_filename == f"grant-{grant.pk}-release-{release.pk}.tsv"
    with open(tsv_download.value.path(), encoding="utf-8") as handle:
        manifest = list(csv.DictReader(io.StringIO(handle.read()), delimiter="\t"))
    assert [entry["path"] for entry in manifest] == list(FILES)
    # The JSON manifest (the same page's other link) lists the same files and checksums.
    json_href = row.locator("a[href$='/manifest.json']").get_attribute("href")
    response = company.request.get(f"{base}{json_href}")
    assert response.status == 200
    listed = response.json()
    assert (listed["grant"], listed["release"]) == (grant.pk, release.pk)
    assert [(f["path"], f["size"], f["sha256"]) for f in listed["files"]] == [
        (entry["path"], int(entry["size"]), entry["sha256"]) for entry in manifest]

    # Each file through its signed link, with the session of the company user: the bytes'
    # SHA-256 is the manifest's, and the bytes are those stored.
    for entry in manifest:
        assert entry["link"].startswith(f"{base}/access/download/")
        response = company.request.get(entry["link"])
        assert response.status == 200
        body = response.body()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert body == FILES[entry["path"]]
        assert int(entry["size"]) == len(body)
        assert response.headers["etag"] == f'"{entry["sha256"]}"'
    # And one as the browser saves it: the download event carries the same bytes.
    first = manifest[0]
    with company.expect_download() as file_download:
        company.evaluate("url => { window.location.href = url; }", first["link"])
    assert file_download.value.suggested_filename == "img-001.png"
    with open(file_download.value.path(), "rb") as handle:
        saved = handle.read()
    assert hashlib.sha256(saved).hexdigest() == first["sha256"] == hashlib.sha256(FILES[first["path"]]).hexdigest()

    downloads = Download.objects.filter(grant=grant, user=setting["applicant"])
    assert sorted(downloads.values_list("file__path", flat=True)) == sorted([*FILES, first["path"]])

    # A colleague who is not named on the grant cannot use the company user's link.
    stranger = open_page()
    sign_in(stranger, live_server, setting["colleague"].email)
    refused = stranger.request.get(first["link"])
    assert refused.status == 403
    assert refused.json()["reason"] == "other_user"
