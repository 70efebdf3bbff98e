"""The signed agreement as a PDF (データ利用契約書): the exact terms and full text of the version
signed, the application, the data, and the signatures.

The document is an official Japanese document, so its fixed text is Japanese whatever the reader's
language (as the ethics notices are). It is rendered from the terms stored with the signature, not
from the version row, so the PDF states what was signed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone, translation

from portal.agreements.models import (
    AgreementTemplate,
    AgreementTemplateVersion,
    Owner,
    SignedAgreement,
)
from portal.lib.pdf import render_pdf

OWNERS_JA = {
    Owner.SOCIETY: "学会",
    Owner.PROVIDING_INSTITUTIONS: "提供元の医療機関",
    Owner.USER: "利用者",
    Owner.JOINT: "共有",
}
KINDS_JA = {
    AgreementTemplate.Kind.DATA_USE: "データ利用契約書",
    AgreementTemplate.Kind.JOINT_RESEARCH: "共同研究契約書",
}
# (label, shown when true, shown when false) for every yes/no term.
FLAGS_JA: dict[str, tuple[str, str, str]] = {
    "model_licence_to_society": ("派生モデルの学会への研究目的での無償ライセンス", "要", "不要"),
    "patent_notice_required": ("特許出願の学会への通知", "要", "不要"),
    "patent_consent_required": ("特許出願についての学会の同意", "要", "不要"),
    "patent_licence_back": ("学会への特許のライセンスバック", "要", "不要"),
    "acknowledgement_required": ("学会への謝辞の記載", "要", "不要"),
    "cite_dataset_release": ("データセット及びリリースの引用", "要", "不要"),
    "commercial_use_allowed": ("商用利用", "可", "不可"),
    "extension_allowed": ("利用期間の延長", "可", "不可"),
    "destruction_at_end": ("利用終了時のデータの消去", "要", "不要"),
    "deletion_certificate_required": ("データ消去証明書の提出", "要", "不要"),
    "onward_transfer_prohibited": ("第三者への再提供", "禁止", "禁止しない"),
    "reidentification_prohibited": ("再識別", "禁止", "禁止しない"),
    "contact_subjects_prohibited": ("研究対象者への接触", "禁止", "禁止しない"),
    "resign_on_new_version": ("新しい版の公開時の再署名", "要", "不要"),
}
LABELS_JA = {
    "images_owner": "画像の帰属",
    "annotated_data_owner": "アノテーション済み学習データの帰属",
    "model_owner": "データから派生したモデル及びアルゴリズムの帰属",
    "publication_duties_ja": "成果の公表及び謝辞に関する義務",
    "fee_jpy": "利用料",
    "fee_terms_ja": "利用料の条件",
    "term_months": "利用期間",
    "security_obligations_ja": "安全管理措置の義務",
    "benefit_sharing_ja": "アノテーション作業者への利益還元",
} | {name: label for name, (label, _yes, _no) in FLAGS_JA.items()}


def term_rows_ja(terms: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) in Japanese for every structured term, in the model's order."""
    rows = []
    for name in AgreementTemplateVersion.TERM_FIELDS:
        value = terms.get(name)
        if name in FLAGS_JA:
            _label, yes, no = FLAGS_JA[name]
            text = yes if value else no
        elif name in {"images_owner", "annotated_data_owner", "model_owner"}:
            text = OWNERS_JA.get(value, str(value))  # type: ignore[call-overload]
        elif name == "fee_jpy":
            text = "無償" if not value else f"{int(value):,}円"
        elif name == "term_months":
            text = f"{value}か月"
        else:
            text = str(value or "").strip() or "なし"
        rows.append((LABELS_JA[name], text))
    return rows


def japanese_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M:%S}"


def _person(name: str, title: str) -> str:
    return f"{title}　{name}" if title else name


def agreement_pdf_render(agreement: SignedAgreement) -> bytes:
    """The PDF of ``agreement`` as it stands (signed, or signed and countersigned)."""
    version = agreement.template_version
    template = version.template
    request = agreement.access_request
    releases = (
        request.releases.filter(dataset__society_id=agreement.society_id)
        .select_related("dataset").order_by("dataset__slug", "version")
    )
    context = {
        "agreement": agreement,
        "heading": KINDS_JA.get(template.kind, "契約書"),  # type: ignore[call-overload]
        "template": template,
        "version": version,
        "society": agreement.society,
        "request": request,
        "organization_name": request.organization.name_ja,
        # A release built by an anonymisation job names it: its report says what was removed.
        "releases": [{"dataset": release.dataset.title_ja, "slug": release.dataset.slug,
                      "version": release.version,
                      "deid_job": release.source_reference if release.source == "deid_job" else ""}
                     for release in releases],
        "terms": term_rows_ja(agreement.terms),
        "signed_at": japanese_datetime(agreement.signed_at),
        "signatory": _person(agreement.signatory_name, agreement.signatory_title),
        "countersigned_at": japanese_datetime(agreement.countersigned_at),
        "countersigner": _person(agreement.countersigner_name, agreement.countersigner_title),
    }
    with translation.override("ja"):
        return render_pdf("agreement.html", context)


def agreement_pdf_store(agreement: SignedAgreement, *, stage: str) -> str:
    """Render and store the PDF on ``agreement`` (not saved); returns the stored file's name."""
    pdf = agreement_pdf_render(agreement)
    agreement.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    reference = agreement.access_request.reference or f"request-{agreement.access_request_id}"
    agreement.pdf.save(f"{reference}-{agreement.society.slug}-{stage}.pdf", ContentFile(pdf), save=False)
    return agreement.pdf.name
