"""Provision records as a Japanese PDF and as CSV (UTF-8 with BOM, Japanese headers, for Excel)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.utils import timezone, translation
from django.utils.translation import pgettext, pgettext_lazy

from portal.access.models import ProvisionRecord
from portal.lib.csvexport import csv_lines
from portal.lib.pdf import render_pdf

# The record's items in the order of REGULATION.md a5. Each is labelled with its field's verbose
# name, or where the record words it otherwise, with the label below; the Japanese is in the
# catalogue, and the record is always written in Japanese (the legal terms).
COLUMNS: list[str] = [
    "grant_reference", "provided_from", "provided_until", "provider_name", "provider_address",
    "provider_head", "provider_responsible", "recipient_name", "recipient_address", "recipient_head",
    "recipient_responsible", "study_title", "study_reference", "subject_identification", "data_items",
    "acquisition_history", "consent_status", "legal_basis", "processing_state", "foreign_provision",
    "recorded_by", "record_medium", "custodian", "provider_keep_until", "recipient_keep_until", "created_at",
]
_LABELS = {
    "grant_reference": pgettext_lazy("provision record", "Grant number"),
    "provider_name": pgettext_lazy("provision record", "Name of the providing institution"),
    "provider_head": pgettext_lazy("provision record", "Name of the head (representative) of the providing institution"),
    "recipient_name": pgettext_lazy("provision record", "Name of the receiving institution"),
    "custodian": pgettext_lazy("provision record", "Custodian"),
    "created_at": pgettext_lazy("provision record", "Created at"),
}


def column_labels() -> list[str]:
    """The items' labels in the active language."""
    return [str(_LABELS[name]) if name in _LABELS else str(ProvisionRecord._meta.get_field(name).verbose_name)
            for name in COLUMNS]


def record_values(record: ProvisionRecord) -> list[tuple[str, str]]:
    """Every item of the record as (Japanese label, text)."""
    with translation.override("ja"):
        values = {
            "grant_reference": record.grant.reference,
            "legal_basis": record.get_legal_basis_display(),
            "processing_state": record.get_processing_state_display(),
            "recipient_keep_until": (
                record.recipient_keep_until.isoformat() if record.recipient_keep_until
                else pgettext("provision record", "Set once the study's completion is reported (5 years from that day)")
            ),
            "created_at": timezone.localtime(record.created_at).strftime("%Y-%m-%d %H:%M"),
            "custodian": f"{record.custodian_name}（{record.get_custodian_display()}）"
            if record.custodian_name else str(record.get_custodian_display()),
        }
        rows = []
        for label, name in zip(column_labels(), COLUMNS, strict=True):
            if name in values:
                rows.append((label, values[name]))
                continue
            value = getattr(record, name)
            rows.append((label, value.isoformat() if hasattr(value, "isoformat") else str(value or "")))
    return rows


def _csv_rows(records: Iterable[ProvisionRecord]) -> Iterator[list[str]]:
    with translation.override("ja"):
        labels = column_labels()
    yield labels
    for record in records:
        yield [value for _label, value in record_values(record)]


def provision_csv(records: Iterable[ProvisionRecord]) -> Iterator[str]:
    """The records as CSV lines, starting with the BOM and the header row; the study title and
    names come from applicants, so they go through the one writer that neutralises formulas."""
    return csv_lines(_csv_rows(records))


def provision_pdf(record: ProvisionRecord) -> bytes:
    return render_pdf("provision_record.html", {"record": record, "rows": record_values(record),
                                                "printed_at": timezone.localtime()})
