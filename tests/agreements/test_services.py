"""Agreement services: who keeps templates, publishing rules, versions that signed agreements keep,
the signature and countersignature with their Japanese PDF, audit and e-mail."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from pypdf import PdfReader

from portal.agreements import services
from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion, SignedAgreement
from portal.agreements.selectors import agreement_needs_resign, current_version_for
from portal.audit.models import AuditEvent
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory
from tests.factories.access import AccessRequestFactory, agreement_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release
from tests.factories.manifests import pseudonym

pytestmark = pytest.mark.django_db

Version = AgreementTemplateVersion

COMPLETE_TERMS = {
    "body_ja": "第1条（目的）本契約は、学会が提供する臨床画像の利用条件を定める。\n第2条（禁止事項）利用者は再識別を行わない。",
    "body_en": "Article 1 (Purpose) This agreement sets the conditions of use.",
    "images_owner": "institutions",
    "annotated_data_owner": "society",
    "model_owner": "joint",
    "model_licence_to_society": True,
    "patent_licence_back": True,
    "publication_duties_ja": "論文にはデータセット名とリリース番号を明記する。",
    "commercial_use_allowed": True,
    "fee_jpy": 500000,
    "fee_terms_ja": "契約締結後30日以内に一括で支払う。",
    "term_months": 24,
    "security_obligations_ja": "アクセス権限を利用者に限定し、操作ログを3年間保存する。",
    "benefit_sharing_ja": "製品化の収益の一部をアノテーション作業者の研修に充てる。",
}


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


def _create(society, by, **overrides):  # type: ignore[no-untyped-def]
    fields = {**COMPLETE_TERMS, **overrides}
    return services.agreement_template_create(
        society=society, kind="data_use", name_ja="日本病理学会 データ利用契約", name_en="JSP data-use agreement",
        by=by, **fields,
    )


def _published(society, by, **overrides):  # type: ignore[no-untyped-def]
    template = _create(society, by, **overrides)
    services.agreement_version_publish(version=template.versions.get(number=1), by=by)
    template.refresh_from_db()
    return template


@pytest.fixture
def request_for(society, applicant):  # type: ignore[no-untyped-def]
    def make(**kwargs):  # type: ignore[no-untyped-def]
        dataset = DatasetFactory(society=kwargs.pop("dataset_society", society), slug="jsp-gastric",
                                 title_ja="胃生検病理画像")
        release = make_release(dataset, [FileSpec(subject=pseudonym("P-1"))], store=False,
                               source=kwargs.pop("release_source", "import"),
                               source_reference=kwargs.pop("release_reference", ""))
        access_request = AccessRequestFactory(applicant=applicant, reference="DAR-2026-0007",
                                              title="内視鏡画像を用いた病変検出AIの開発", **kwargs)
        access_request.organization = applicant.org_memberships.get().organization
        access_request.save()
        access_request.releases.set([release])
        return access_request
    return make


def _sign(access_request, society, by, ip="203.0.113.7"):  # type: ignore[no-untyped-def]
    return services.agreement_sign(access_request=access_request, society=society, signatory_name="申請 太郎",
                                   signatory_title="代表取締役", ip=ip, by=by)


def _pdf_text(agreement: SignedAgreement) -> tuple[bytes, str]:
    with default_storage.open(agreement.pdf.name, "rb") as handle:
        data = handle.read()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return data, text.replace(" ", "").replace("\u3000", "").replace("\n", "")


# --- Who keeps templates ------------------------------------------------------------------------


def test_admin_creates_template_with_draft_version_one(society, society_admin):
    template = _create(society, society_admin)

    version = template.versions.get()
    assert (template.society, template.kind, template.name_ja, template.current_version) == (
        society, "data_use", "日本病理学会 データ利用契約", None)
    assert (version.number, version.status, version.fee_jpy, version.model_owner) == (1, "draft", 500000, "joint")
    assert list(AuditEvent.objects.filter(action__startswith="agreements.").values_list("action", flat=True)) == [
        "agreements.template_created"]


def test_steward_and_other_societys_admin_cannot_create_templates(society, steward):
    other_admin = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(slug="jges"), user=other_admin, role="admin")
    for user in (steward, other_admin):
        with pytest.raises(PermissionDenied):
            _create(society, user)
    assert AgreementTemplate.objects.count() == 0
    assert Version.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="agreements.").exists()


def test_operator_keeps_any_societys_templates(society):
    operator = UserFactory(is_staff=True)
    template = _published(society, operator)
    assert template.current_version.status == "published"


def test_second_template_of_the_same_kind_is_refused(society, society_admin):
    _create(society, society_admin)
    with pytest.raises(ValidationError) as error:
        _create(society, society_admin)
    assert list(error.value.message_dict) == ["kind"]
    assert AgreementTemplate.objects.count() == 1


# --- Publishing ---------------------------------------------------------------------------------


def test_publish_needs_japanese_text_and_every_written_term(society, society_admin):
    template = _create(society, society_admin, body_ja="  ", security_obligations_ja="", benefit_sharing_ja="")
    version = template.versions.get()

    with pytest.raises(ValidationError) as error:
        services.agreement_version_publish(version=version, by=society_admin)

    assert sorted(error.value.message_dict) == ["benefit_sharing_ja", "body_ja", "security_obligations_ja"]
    assert error.value.message_dict["body_ja"] == [
        "Write the full text of the agreement in Japanese before publishing it."]
    version.refresh_from_db()
    template.refresh_from_db()
    assert (version.status, version.published_at, template.current_version) == ("draft", None, None)
    assert not AuditEvent.objects.filter(action="agreements.version_published").exists()


def test_publish_makes_the_version_current_and_is_audited(society, society_admin):
    template = _published(society, society_admin)

    version = template.versions.get()
    assert (version.status, version.published_by, template.current_version) == ("published", society_admin, version)
    assert current_version_for(society) == version
    event = AuditEvent.objects.get(action="agreements.version_published")
    assert (event.details["version"], event.details["superseded"]) == (1, None)


def test_steward_cannot_publish(society, society_admin, steward):
    version = _create(society, society_admin).versions.get()
    with pytest.raises(PermissionDenied):
        services.agreement_version_publish(version=version, by=steward)
    version.refresh_from_db()
    assert version.status == "draft"


def test_published_version_is_never_edited_by_service_or_model(society, society_admin):
    version = _published(society, society_admin).current_version

    with pytest.raises(ValidationError):
        services.agreement_version_update_draft(version=version, by=society_admin, fee_jpy=0)
    version.fee_jpy = 0
    with pytest.raises(ValidationError):
        version.save()

    version.refresh_from_db()
    assert version.fee_jpy == 500000
    assert not AuditEvent.objects.filter(action="agreements.version_updated").exists()


def test_draft_is_edited_and_audited(society, society_admin):
    version = _create(society, society_admin).versions.get()
    services.agreement_version_update_draft(version=version, by=society_admin, fee_jpy=0, term_months=6)
    version.refresh_from_db()
    assert (version.fee_jpy, version.term_months) == (0, 6)
    event = AuditEvent.objects.get(action="agreements.version_updated")
    assert event.details["changed"] == ["fee_jpy", "term_months"]


# --- Versions -----------------------------------------------------------------------------------


def test_new_version_supersedes_and_signature_stays_on_v1(society, society_admin, applicant, request_for):
    template = _published(society, society_admin)
    v1 = template.current_version
    agreement = _sign(request_for(), society, applicant)

    v2 = services.agreement_version_new(template=template, by=society_admin, fee_jpy=800000,
                                        change_summary="利用料を改定した。")
    assert (v2.number, v2.status, v2.fee_jpy, v2.body_ja) == (2, "draft", 800000, COMPLETE_TERMS["body_ja"])
    services.agreement_version_publish(version=v2, by=society_admin)

    v1.refresh_from_db()
    template.refresh_from_db()
    agreement.refresh_from_db()
    assert (v1.status, v1.fee_jpy) == ("superseded", 500000)
    assert template.current_version == v2
    assert agreement.template_version == v1
    assert agreement.terms["fee_jpy"] == 500000
    assert agreement_needs_resign(agreement) is False


def test_needs_resign_only_when_the_new_version_says_so(society, society_admin, applicant, request_for):
    template = _published(society, society_admin)
    agreement = _sign(request_for(), society, applicant)
    v2 = services.agreement_version_new(template=template, by=society_admin, resign_on_new_version=True,
                                        change_summary="再識別の禁止を強化した。")
    assert agreement_needs_resign(agreement) is False  # a draft asks nothing yet

    services.agreement_version_publish(version=v2, by=society_admin)

    assert agreement_needs_resign(agreement) is True


def test_new_version_needs_a_change_summary_to_publish(society, society_admin):
    template = _published(society, society_admin)
    v2 = services.agreement_version_new(template=template, by=society_admin, fee_jpy=0)
    with pytest.raises(ValidationError) as error:
        services.agreement_version_publish(version=v2, by=society_admin)
    assert list(error.value.message_dict) == ["change_summary"]
    template.refresh_from_db()
    assert template.current_version.number == 1


def test_only_one_draft_at_a_time(society, society_admin):
    template = _published(society, society_admin)
    services.agreement_version_new(template=template, by=society_admin)
    with pytest.raises(ValidationError):
        services.agreement_version_new(template=template, by=society_admin)
    assert template.versions.count() == 2


# --- Signing ------------------------------------------------------------------------------------


def test_sign_by_someone_who_is_not_the_signatory_is_refused_and_changes_nothing(
    society, society_admin, applicant, request_for
):
    _published(society, society_admin)
    signatory = UserFactory(full_name="代表 取締役")
    access_request = request_for(signatory=signatory)

    with pytest.raises(PermissionDenied) as error:
        _sign(access_request, society, applicant)

    assert str(error.value) == "Only the authorised signatory named in the application can sign its agreement."
    assert SignedAgreement.objects.count() == 0
    assert not AuditEvent.objects.filter(action="agreements.signed").exists()
    assert mail.outbox == []


def test_sign_refused_while_the_society_has_no_published_version(society, society_admin, applicant, request_for):
    _create(society, society_admin)
    with pytest.raises(ValidationError) as error:
        _sign(request_for(), society, applicant)
    assert error.value.code == "no_published_version"
    assert SignedAgreement.objects.count() == 0


def test_sign_needs_name_and_title(society, society_admin, applicant, request_for):
    _published(society, society_admin)
    with pytest.raises(ValidationError) as error:
        services.agreement_sign(access_request=request_for(), society=society, signatory_name=" ",
                                signatory_title="", ip=None, by=applicant)
    assert sorted(error.value.message_dict) == ["name", "title"]
    assert SignedAgreement.objects.count() == 0


def test_sign_stores_terms_and_a_pdf_with_the_exact_terms(society, society_admin, applicant, request_for, django_capture_on_commit_callbacks):
    template = _published(society, society_admin)
    with django_capture_on_commit_callbacks(execute=True):
        agreement = _sign(request_for(), society, applicant)

    assert (agreement.status, agreement.signatory, agreement.template_version) == (
        "signed", applicant, template.current_version)
    assert agreement.terms == template.current_version.terms()
    assert str(agreement.signed_ip) == "203.0.113.7"
    data, text = _pdf_text(agreement)
    assert data.startswith(b"%PDF-")
    assert agreement.pdf_sha256 == hashlib.sha256(data).hexdigest()
    for expected in ("データ利用契約書", "DAR-2026-0007", "内視鏡画像を用いた病変検出AIの開発", "日本病理学会",
                     "胃生検病理画像", "jsp-gastric", "v1", "申請太郎", "代表取締役", "203.0.113.7",
                     "提供元の医療機関", "学会", "共有", "500,000円", "24か月", "商用利用",
                     COMPLETE_TERMS["publication_duties_ja"], COMPLETE_TERMS["fee_terms_ja"],
                     COMPLETE_TERMS["security_obligations_ja"], COMPLETE_TERMS["benefit_sharing_ja"],
                     "第1条（目的）本契約は、学会が提供する臨床画像の利用条件を定める。",
                     "（学会の署名待ち）"):
        assert expected in text, expected
    event = AuditEvent.objects.get(action="agreements.signed")
    assert (event.details["pdf_sha256"], event.details["version"]) == (agreement.pdf_sha256, 1)
    assert [message.to for message in mail.outbox] == [[society_admin.email]]
    assert "DAR-2026-0007" in mail.outbox[0].subject


def test_sign_twice_on_the_same_version_is_refused(society, society_admin, applicant, request_for):
    _published(society, society_admin)
    access_request = request_for()
    _sign(access_request, society, applicant)
    with pytest.raises(ValidationError):
        _sign(access_request, society, applicant)
    assert SignedAgreement.objects.count() == 1


def test_sign_refused_for_a_society_whose_data_is_not_requested(society, society_admin, applicant, request_for):
    other = SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会")
    other_admin = UserFactory()
    SocietyMembershipFactory(society=other, user=other_admin, role="admin")
    _published(other, other_admin)
    with pytest.raises(ValidationError) as error:
        _sign(request_for(), other, applicant)
    assert error.value.code == "society_not_in_request"
    assert SignedAgreement.objects.count() == 0


# --- Countersigning -----------------------------------------------------------------------------


def test_countersign_only_by_a_society_admin(society, society_admin, steward, applicant, request_for):
    _published(society, society_admin)
    agreement = _sign(request_for(), society, applicant)
    operator = UserFactory(is_staff=True)
    other_admin = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(slug="jges"), user=other_admin, role="admin")

    for user in (steward, applicant, operator, other_admin):
        with pytest.raises(PermissionDenied):
            services.agreement_countersign(agreement=agreement, countersigner_name="学会 次郎",
                                           countersigner_title="理事長", ip=None, by=user)
    agreement.refresh_from_db()
    assert (agreement.status, agreement.countersigned_by, agreement.countersigned_at) == ("signed", None, None)
    assert not AuditEvent.objects.filter(action="agreements.countersigned").exists()


def test_countersign_completes_and_rerenders_the_pdf(
    society, society_admin, applicant, request_for, django_capture_on_commit_callbacks
):
    _published(society, society_admin)
    agreement = _sign(request_for(), society, applicant)
    first_name, first_hash = agreement.pdf.name, agreement.pdf_sha256

    with django_capture_on_commit_callbacks(execute=True):
        services.agreement_countersign(agreement=agreement, countersigner_name="学会 次郎",
                                       countersigner_title="理事長", ip="198.51.100.4", by=society_admin)

    agreement.refresh_from_db()
    assert (agreement.status, agreement.countersigned_by, agreement.countersigner_name) == (
        "completed", society_admin, "学会 次郎")
    assert agreement.pdf.name != first_name
    assert agreement.pdf_sha256 != first_hash
    assert default_storage.exists(first_name)
    data, text = _pdf_text(agreement)
    assert agreement.pdf_sha256 == hashlib.sha256(data).hexdigest()
    for expected in ("申請太郎", "理事長学会次郎", "198.51.100.4", "500,000円"):
        assert expected in text, expected
    assert "（学会の署名待ち）" not in text
    event = AuditEvent.objects.get(action="agreements.countersigned")
    assert event.details["previous"] == {"pdf": first_name, "pdf_sha256": first_hash}
    assert [message.to for message in mail.outbox] == [[applicant.email]]

    with pytest.raises(ValidationError):
        services.agreement_countersign(agreement=agreement, countersigner_name="学会 次郎",
                                       countersigner_title="理事長", ip=None, by=society_admin)


def test_factory_version_is_what_current_version_returns(society):
    version = agreement_version(society, commercial_use_allowed=True)
    assert current_version_for(society) == version
    assert current_version_for(society, kind="joint_research") is None


def test_pdf_names_the_anonymisation_job_of_a_release(society, society_admin, applicant, request_for):
    _published(society, society_admin)
    agreement = _sign(request_for(release_source="deid_job", release_reference="deid-job-7"), society, applicant)

    _data, text = _pdf_text(agreement)

    assert "deid-job-7" in text.replace("\n", "")
