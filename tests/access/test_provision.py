"""Provision records (提供記録, REGULATION.md a5): the items, retention, PDF and CSV, and the pages."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from portal.access.models import LegalBasis, ProvisionRecord, RetentionNotEnded
from portal.access.services.records import add_years, provision_record_create
from portal.audit.models import AuditEvent
from tests.factories import OrganizationFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.access import granted_request
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(society):  # type: ignore[no-untyped-def]
    society.organization = OrganizationFactory(
        kind="society", name_ja="一般社団法人日本病理学会", address="東京都文京区本郷1-1-1", representative="病理 一郎",
    )
    society.save()
    dataset = DatasetFactory(
        society=society, slug="gastric", title_ja="胃生検病理画像", modality="endoscopy", body_part="胃",
        collection_start=date(2020, 4, 1), collection_end=date(2023, 3, 31),
    )
    dataset.protocol.principal_investigator.full_name = "研究 責任者"
    dataset.protocol.principal_investigator.save()
    release = make_release(dataset, [FileSpec("a" * 32), FileSpec("b" * 32), FileSpec("b" * 32)], store=False)
    notice = published_notice(dataset)
    pi = UserFactory(email="pi@company.example.co.jp", full_name="企業 研究者")
    co = UserFactory(email="co@company.example.co.jp", full_name="共同 研究者")
    request, grant = granted_request([pi, co], [release], society=society)
    request.organization.name_ja = "テスト医療AI株式会社"
    request.organization.address = "大阪府大阪市北区1-2-3"
    request.organization.representative = "代表 花子"
    request.organization.save()
    request.ethics_approval_number = "R5-123"
    request.legal_basis = LegalBasis.JOINT_USE
    request.foreign_access = True
    request.foreign_country = "シンガポール"
    request.save()
    return {"dataset": dataset, "release": release, "notice": notice, "request": request, "grant": grant,
            "pi": pi, "co": co}


def test_record_holds_every_required_item(setup, society):
    grant, request, release, notice = setup["grant"], setup["request"], setup["release"], setup["notice"]
    record = provision_record_create(grant=grant)
    start = timezone.localdate(grant.starts_at)
    end = timezone.localdate(grant.expires_at)
    assert record.provided_from == start
    assert record.provided_until == end
    assert record.provider_name == "日本病理学会"
    assert record.provider_address == "東京都文京区本郷1-1-1"
    assert record.provider_head == "病理 一郎"
    assert record.provider_responsible == "研究 責任者"
    assert record.recipient_name == "テスト医療AI株式会社"
    assert record.recipient_address == "大阪府大阪市北区1-2-3"
    assert record.recipient_head == "代表 花子"
    assert record.recipient_responsible == "企業 研究者"
    assert record.study_title == request.title
    assert record.study_reference == f"R5-123（申請番号 {request.reference}）"
    assert record.subject_identification == f"仮名ID（学会共通ハッシュID）による。対象: {release} の 2 名"
    assert record.data_items == f"胃生検病理画像（内視鏡画像、胃）{release}: 症例 2 件、画像 3 件、ファイル 3 件"
    protocol = setup["dataset"].protocol
    assert record.acquisition_history == (
        f"胃生検病理画像: 研究計画 {protocol.number}（{protocol.institution.name_ja}）に基づき"
        "2020-04-01〜2023-03-31に診療の過程で取得された臨床画像を、日本病理学会のデータベースに登録したもの"
    )
    published = timezone.localdate(notice.first_published_at)
    assert record.consent_status == (
        f"胃生検病理画像: 倫理指針に基づくオプトアウト手続を実施（通知番号 {notice.reference}（公開日 {published}））\n"
        "提供の法的根拠: 共同利用"
    )
    assert record.legal_basis == "joint_use"
    assert record.processing_state == "pseudonymised"
    assert record.foreign_provision == "あり（シンガポール）"
    assert record.recorded_by == "データ共有ポータル（自動作成）"
    assert record.record_medium == "電磁的記録（データ共有ポータルのデータベース）"
    assert record.provider_keep_until == add_years(end, 3)
    assert record.recipient_keep_until is None
    event = AuditEvent.objects.get(action="access.provision_recorded")
    assert event.details["grant"] == grant.reference


def test_record_is_written_once(setup):
    first = provision_record_create(grant=setup["grant"])
    second = provision_record_create(grant=setup["grant"])
    assert first.pk == second.pk
    assert ProvisionRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="access.provision_recorded").count() == 1


def test_dataset_without_notice_says_so(society):
    dataset = DatasetFactory(society=society, title_ja="通知なし")
    release = make_release(dataset, [FileSpec("c" * 32)], store=False)
    _request, grant = granted_request([UserFactory()], [release], society=society)
    record = provision_record_create(grant=grant)
    assert record.consent_status.splitlines()[0] == "通知なし: 公開中のオプトアウト通知なし"
    assert record.foreign_provision == "なし"


def test_add_years_handles_the_leap_day():
    assert add_years(date(2024, 2, 29), 3) == date(2027, 2, 28)
    assert add_years(date(2024, 3, 1), 5) == date(2029, 3, 1)


def test_record_cannot_be_deleted_before_retention_ends(setup):
    record = provision_record_create(grant=setup["grant"])
    with pytest.raises(RetentionNotEnded):
        record.delete()
    with pytest.raises(RetentionNotEnded):
        ProvisionRecord.objects.filter(pk=record.pk).delete()
    # The provider's period over but the recipient's unknown: still kept.
    ProvisionRecord.objects.filter(pk=record.pk).update(provider_keep_until=date(2000, 1, 1))
    record.refresh_from_db()
    with pytest.raises(RetentionNotEnded):
        record.delete()
    assert ProvisionRecord.objects.filter(pk=record.pk).exists()
    ProvisionRecord.objects.filter(pk=record.pk).update(recipient_keep_until=date(2001, 1, 1))
    record.refresh_from_db()
    record.delete()
    assert not ProvisionRecord.objects.filter(pk=record.pk).exists()


def _pdf_text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace(" ", "").replace("\n", "")


def test_pdf_holds_the_required_items(client, setup, steward):
    record = provision_record_create(grant=setup["grant"])
    client.force_login(steward)
    response = client.get(reverse("access:provision_pdf", args=[record.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = _pdf_text(response.content)
    for expected in [
        "試料・情報の提供に関する記録", setup["grant"].reference, "日本病理学会", "東京都文京区本郷1-1-1", "病理一郎",
        "研究責任者", "テスト医療AI株式会社", "企業研究者", "R5-123", "仮名ID（学会共通ハッシュID）による。",
        "症例2件", setup["notice"].reference, "共同利用", "仮名加工情報", "あり（シンガポール）",
        "データ共有ポータル（自動作成）", record.provided_from.isoformat(), record.provider_keep_until.isoformat(),
        "研究の終了報告後に確定",
    ]:
        assert expected in text, expected


def test_csv_export_has_japanese_headers_bom_and_the_filtered_rows(client, setup, society, steward):
    record = provision_record_create(grant=setup["grant"])
    other_dataset = DatasetFactory(society=society, title_ja="別データ")
    other_release = make_release(other_dataset, [FileSpec("d" * 32)], store=False)
    other_request, other_grant = granted_request([UserFactory()], [other_release], society=society)
    other_request.legal_basis = LegalBasis.CONSENT
    other_request.save()
    other = provision_record_create(grant=other_grant)
    client.force_login(steward)
    response = client.get(reverse("access:provision_csv"), {"legal_basis": "joint_use"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:4] == ["付与番号", "提供開始日", "提供終了日", "提供元機関の名称"]
    assert "研究対象者等を特定するに足りる事項" in rows[0]
    assert "提供の法的根拠" in rows[0]
    assert len(rows) == 2
    assert rows[1][0] == setup["grant"].reference
    assert rows[1][rows[0].index("提供の法的根拠")] == "共同利用"
    assert rows[1][rows[0].index("提供元の保管期限")] == record.provider_keep_until.isoformat()
    everything = client.get(reverse("access:provision_csv"))
    all_rows = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode("utf-8-sig"))))
    assert sorted(row[0] for row in all_rows[1:]) == sorted([record.grant.reference, other.grant.reference])


def test_list_filters_and_detail(client, setup, society, society_admin):
    record = provision_record_create(grant=setup["grant"])
    client.force_login(society_admin)
    response = client.get(reverse("access:provision_list"))
    assert response.status_code == 200
    assert [r.pk for r in response.context["records"]] == [record.pk]
    response = client.get(reverse("access:provision_list"), {"q": "存在しない"})
    assert list(response.context["records"]) == []
    later = (record.provided_until + timedelta(days=1)).isoformat()
    response = client.get(reverse("access:provision_list"), {"provided_from": later})
    assert list(response.context["records"]) == []
    detail = client.get(reverse("access:provision_detail", args=[record.pk]))
    assert detail.status_code == 200
    assert "仮名ID（学会共通ハッシュID）による。" in detail.content.decode()


def test_provision_pages_are_for_the_societys_admins_and_stewards(client, setup, applicant, outsider):
    record = provision_record_create(grant=setup["grant"])
    other_steward = UserFactory()
    SocietyMembershipFactory(user=other_steward, role="steward")
    give_totp(other_steward)
    for user in (applicant, outsider, setup["pi"]):
        client.force_login(user)
        assert client.get(reverse("access:provision_list")).status_code == 403
        assert client.get(reverse("access:provision_csv")).status_code == 403
        assert client.get(reverse("access:provision_detail", args=[record.pk])).status_code == 403
    client.force_login(other_steward)
    assert client.get(reverse("access:provision_list")).context["records"].__len__() == 0
    assert client.get(reverse("access:provision_detail", args=[record.pk])).status_code == 404
    assert client.get(reverse("access:provision_pdf", args=[record.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("access:provision_list")).status_code == 302


def test_provision_list_runs_a_fixed_number_of_queries(client, society, steward, django_assert_num_queries):
    dataset = DatasetFactory(society=society)
    release = make_release(dataset, [FileSpec("e" * 32)], store=False)
    client.force_login(steward)

    def add(n: int) -> None:
        for _ in range(n):
            _request, grant = granted_request([UserFactory()], [release], society=society)
            provision_record_create(grant=grant)

    add(1)
    client.get(reverse("access:provision_list"))
    with django_assert_num_queries(9) as first:
        client.get(reverse("access:provision_list"))
    add(4)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(reverse("access:provision_list"))
    assert len(response.context["records"]) == 5


def test_grant_start_writes_the_record_and_schedules_the_reports(society, society_admin):
    from portal.access.models import RequestUser, UsageReport
    from portal.access.services.grants import grant_start
    from tests.factories.access import AccessRequestFactory

    dataset = DatasetFactory(society=society, title_ja="開始時の記録")
    release = make_release(dataset, [FileSpec("f" * 32)], store=False)
    request = AccessRequestFactory(status="signed", reference="DAR-S00001",
                                   period_end=timezone.localdate() + timedelta(days=400))
    request.releases.set([release])
    RequestUser.objects.create(access_request=request, user=request.applicant, role="principal", ethics_training=True)
    grant = grant_start(access_request=request, society=society, by=society_admin)
    record = ProvisionRecord.objects.get(grant=grant)
    assert record.recorded_by == f"{society_admin.full_name}（データ共有ポータル（自動作成））"
    assert record.provided_until == timezone.localdate(grant.expires_at)
    assert list(UsageReport.objects.filter(grant=grant).order_by("due_on").values_list("kind", flat=True)) == [
        "annual", "end_of_use"]


def test_csv_export_neutralises_formulas_the_applicant_wrote(client, setup, steward):
    request = setup["request"]
    request.title = '=HYPERLINK("http://x","y")'
    request.save()
    request.organization.name_ja = "+1"
    request.organization.address = "-2"
    request.organization.representative = "@SUM(A1)"
    request.organization.save()
    provision_record_create(grant=setup["grant"])
    client.force_login(steward)

    body = b"".join(client.get(reverse("access:provision_csv")).streaming_content)

    assert body.startswith(b"\xef\xbb\xbf")
    header, row = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    cells = dict(zip(header, row, strict=True))
    assert cells["研究課題名"] == '\'=HYPERLINK("http://x","y")'
    assert (cells["提供先機関の名称"], cells["提供先機関の住所"], cells["提供先機関の代表者"]) == (
        "'+1", "'-2", "'@SUM(A1)")


# --- The custodian (保管者, REGULATION.md a5) -------------------------------------------------------


def test_record_names_the_provider_as_custodian_by_default(setup):
    record = provision_record_create(grant=setup["grant"])
    assert (record.custodian, record.custodian_name) == ("provider", "日本病理学会")
    event = AuditEvent.objects.get(action="access.provision_recorded")
    assert (event.details["custodian"], event.details["custodian_name"]) == ("provider", "日本病理学会")


def test_custody_delegated_to_the_recipient_is_set_when_the_record_is_made(setup):
    record = provision_record_create(grant=setup["grant"], custodian="recipient")
    assert (record.custodian, record.custodian_name) == ("recipient", "テスト医療AI株式会社")
    # Set once: a second call returns the record as it was made.
    again = provision_record_create(grant=setup["grant"], custodian="provider")
    assert (again.pk, again.custodian) == (record.pk, "recipient")


def test_unknown_custodian_refused_and_nothing_written(setup):
    with pytest.raises(ValidationError) as caught:
        provision_record_create(grant=setup["grant"], custodian="nobody")
    assert caught.value.message_dict == {"custodian": ["Choose who keeps the provision record."]}
    assert not ProvisionRecord.objects.exists()
    assert not AuditEvent.objects.filter(action="access.provision_recorded").exists()


def test_custodian_is_shown_on_the_pages_the_csv_and_the_pdf(client, setup, steward):
    record = provision_record_create(grant=setup["grant"], custodian="recipient")
    client.force_login(steward)
    client.cookies["django_language"] = "ja"
    listing = client.get(reverse("access:provision_list")).content.decode()
    assert "<th scope=\"col\">保管者</th>" in listing
    assert "テスト医療AI株式会社<br><span class=\"muted\">提供先が保管（提供元から保管を委託）</span>" in listing
    detail = client.get(reverse("access:provision_detail", args=[record.pk])).content.decode()
    assert "テスト医療AI株式会社（提供先が保管（提供元から保管を委託））" in detail
    body = b"".join(client.get(reverse("access:provision_csv")).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1][rows[0].index("保管者")] == "テスト医療AI株式会社（提供先が保管（提供元から保管を委託））"
    text = _pdf_text(client.get(reverse("access:provision_pdf", args=[record.pk])).content)
    assert "保管者" in text and "テスト医療AI株式会社（提供先が保管（提供元から保管を委託））" in text


def test_countersigning_admin_delegates_custody_through_the_page(client, society, society_admin):
    from portal.access.models import RequestUser, SocietyReview
    from portal.agreements.models import SignedAgreement
    from tests.factories.access import AccessRequestFactory, agreement_version

    dataset = DatasetFactory(society=society, title_ja="委託")
    release = make_release(dataset, [FileSpec("e" * 32)], store=False)
    request = AccessRequestFactory(status="signed", reference="DAR-S00002",
                                   period_end=timezone.localdate() + timedelta(days=400))
    request.releases.set([release])
    RequestUser.objects.create(access_request=request, user=request.applicant, role="principal", ethics_training=True)
    reviewer = UserFactory()
    SocietyReview.objects.create(access_request=request, society=society, status="approved", screened_by=reviewer,
                                 screened_at=timezone.now(), decided_by=reviewer, decided_at=timezone.now())
    version = agreement_version(society)
    SignedAgreement.objects.create(
        access_request=request, society=society, template_version=version, terms=version.terms(),
        status=SignedAgreement.Status.SIGNED, signatory=request.applicant, signatory_name="署名 太郎",
        signatory_title="代表取締役", signed_at=timezone.now(),
    )
    client.force_login(society_admin)
    url = reverse("access:steward_countersign", args=[request.pk, society.pk])
    page = client.get(url).content.decode()
    assert 'name="record_custodian" value="recipient"' in page
    client.post(url, {"countersigner_name": "学会 理事長", "countersigner_title": "理事長",
                      "record_custodian": "recipient"})
    record = ProvisionRecord.objects.get(grant__access_request=request)
    assert (record.custodian, record.custodian_name) == ("recipient", request.organization.name_ja)


def test_agreement_pdf_names_the_pi_the_head_and_the_security_level(setup):
    from portal.agreements.documents import agreement_pdf_render

    request = setup["request"]
    request.pi_title = "主任研究員"
    request.pi_researcher_number_kind = "researchmap"
    request.pi_researcher_number = "read0123456"
    request.head_name = "機関 長"
    request.head_title = "代表取締役社長"
    request.security_level = "type_1"
    request.save()
    text = _pdf_text(agreement_pdf_render(request.agreements.get()))
    for expected in ["研究代表者", "企業研究者（主任研究員）", "researchmapIDread0123456", "所属機関の長",
                     "機関長（代表取締役社長）", "セキュリティレベル", "標準レベル（TypeI）"]:
        assert expected in text, expected
