"""The signed agreement as a PDF (データ利用契約書): the exact terms and full text of the version
signed, the application, the data, and the signatures.

The document is an official Japanese document, so it is rendered in Japanese whatever the reader's
language (as the ethics notices are); its labels come from the models and the catalogue. It is
rendered from the terms stored with the signature, not from the version row, so the PDF states
what was signed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import BooleanField
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from portal.agreements.models import (
    AgreementTemplate,
    AgreementTemplateVersion,
    Owner,
    SignedAgreement,
)
from portal.lib.pdf import render_pdf

# How the document words a term where the form's field label reads differently; every other term
# is labelled with its field's verbose name. All Japanese is in the catalogue.
_DOCUMENT_LABELS = {
    "cite_dataset_release": pgettext_lazy("agreement document", "Citation of the dataset and release"),
    "commercial_use_allowed": pgettext_lazy("agreement document", "Commercial use"),
    "fee_jpy": pgettext_lazy("agreement document", "Fee"),
    "term_months": gettext_lazy("Period of use"),
    "extension_allowed": pgettext_lazy("agreement document", "Extension of the period of use"),
    "onward_transfer_prohibited": pgettext_lazy("agreement document", "Onward transfer to third parties"),
    "reidentification_prohibited": pgettext_lazy("agreement document", "Re-identification"),
    "contact_subjects_prohibited": pgettext_lazy("agreement document", "Contact with research subjects"),
    "resign_on_new_version": pgettext_lazy("agreement document", "Re-signing when a new version is published"),
}
# What a yes/no term says, (when true, when false): most are duties, some permissions, some bans.
_REQUIRED = (pgettext_lazy("agreement term", "Required"), pgettext_lazy("agreement term", "Not required"))
_ALLOWED = (pgettext_lazy("agreement term", "Allowed"), pgettext_lazy("agreement term", "Not allowed"))
_PROHIBITED = (pgettext_lazy("agreement term", "Prohibited"), pgettext_lazy("agreement term", "Not prohibited"))
_FLAG_WORDS = {
    "commercial_use_allowed": _ALLOWED,
    "extension_allowed": _ALLOWED,
    "onward_transfer_prohibited": _PROHIBITED,
    "reidentification_prohibited": _PROHIBITED,
    "contact_subjects_prohibited": _PROHIBITED,
}
_OWNER_FIELDS = {"images_owner", "annotated_data_owner", "model_owner"}
# The document's title per kind of agreement (the kind's own label names the kind, without 書).
_TITLES = {
    AgreementTemplate.Kind.DATA_USE: pgettext_lazy("agreement document title", "Data-use agreement"),
    AgreementTemplate.Kind.JOINT_RESEARCH: pgettext_lazy("agreement document title", "Joint-research agreement"),
}


def term_label(name: str) -> str:
    """The document's label of one term, in the active language."""
    if name in _DOCUMENT_LABELS:
        return str(_DOCUMENT_LABELS[name])
    return str(AgreementTemplateVersion._meta.get_field(name).verbose_name)


def term_rows(terms: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) for every structured term, in the model's order, in the active language."""
    rows = []
    for name in AgreementTemplateVersion.TERM_FIELDS:
        value = terms.get(name)
        field = AgreementTemplateVersion._meta.get_field(name)
        if isinstance(field, BooleanField):
            yes, no = _FLAG_WORDS.get(name, _REQUIRED)
            text = str(yes if value else no)
        elif name in _OWNER_FIELDS:
            text = str(Owner(value).label) if value in Owner.values else str(value)
        elif name == "fee_jpy":
            text = _("Free of charge") if not value else pgettext("agreement term", "%(amount)s yen") % {
                "amount": f"{int(value):,}"}
        elif name == "term_months":
            text = pgettext("agreement term", "%(months)s months") % {"months": value}
        else:
            text = str(value or "").strip() or _("None")
        rows.append((term_label(name), text))
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
    with translation.override("ja"):
        context = _context(agreement, version, template, request, releases)
        return render_pdf("agreement.html", context)


def _context(agreement: SignedAgreement, version: AgreementTemplateVersion, template: AgreementTemplate,
             request: Any, releases: Any) -> dict[str, Any]:
    return {
        "agreement": agreement,
        "heading": str(_TITLES.get(template.kind, gettext_lazy("Agreement"))),  # type: ignore[call-overload]
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
        "terms": term_rows(agreement.terms),
        "signed_at": japanese_datetime(agreement.signed_at),
        "signatory": _person(agreement.signatory_name, agreement.signatory_title),
        "countersigned_at": japanese_datetime(agreement.countersigned_at),
        "countersigner": _person(agreement.countersigner_name, agreement.countersigner_title),
    }


def agreement_pdf_store(agreement: SignedAgreement, *, stage: str) -> str:
    """Render and store the PDF on ``agreement`` (not saved); returns the stored file's name."""
    pdf = agreement_pdf_render(agreement)
    agreement.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    reference = agreement.access_request.reference or f"request-{agreement.access_request_id}"
    agreement.pdf.save(f"{reference}-{agreement.society.slug}-{stage}.pdf", ContentFile(pdf), save=False)
    return agreement.pdf.name
