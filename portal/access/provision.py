"""Provision records as a Japanese PDF and as CSV (UTF-8 with BOM, Japanese headers, for Excel)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from django.utils import timezone, translation

from portal.access.models import ProvisionRecord
from portal.access.services.reports import LEGAL_BASIS_JA, PROCESSING_JA

# (label, value) in the order of REGULATION.md a5; the labels are the legal terms, always Japanese.
COLUMNS: list[tuple[str, str]] = [
    ("付与番号", "grant_reference"),
    ("提供開始日", "provided_from"),
    ("提供終了日", "provided_until"),
    ("提供元機関の名称", "provider_name"),
    ("提供元機関の住所", "provider_address"),
    ("提供元機関の長（代表者）の氏名", "provider_head"),
    ("提供元の研究責任者", "provider_responsible"),
    ("提供先機関の名称", "recipient_name"),
    ("提供先機関の住所", "recipient_address"),
    ("提供先機関の代表者", "recipient_head"),
    ("提供先の研究責任者", "recipient_responsible"),
    ("研究課題名", "study_title"),
    ("承認番号", "study_reference"),
    ("研究対象者等を特定するに足りる事項", "subject_identification"),
    ("試料・情報の項目", "data_items"),
    ("取得の経緯", "acquisition_history"),
    ("同意・オプトアウト手続の状況", "consent_status"),
    ("提供の法的根拠", "legal_basis"),
    ("加工の状態", "processing_state"),
    ("外国にある第三者への提供", "foreign_provision"),
    ("記録作成者", "recorded_by"),
    ("記録媒体", "record_medium"),
    ("提供元の保管期限", "provider_keep_until"),
    ("提供先の保管期限", "recipient_keep_until"),
    ("作成日時", "created_at"),
]


def record_values(record: ProvisionRecord) -> list[tuple[str, str]]:
    """Every item of the record as (Japanese label, text)."""
    with translation.override("ja"):
        values = {
            "grant_reference": record.grant.reference,
            "legal_basis": LEGAL_BASIS_JA.get(record.legal_basis, record.legal_basis),  # type: ignore[call-overload]
            "processing_state": PROCESSING_JA.get(record.processing_state, record.processing_state),  # type: ignore[call-overload]
            "recipient_keep_until": (
                record.recipient_keep_until.isoformat() if record.recipient_keep_until
                else "研究の終了報告後に確定（終了報告の日から5年）"
            ),
            "created_at": timezone.localtime(record.created_at).strftime("%Y-%m-%d %H:%M"),
        }
        rows = []
        for label, name in COLUMNS:
            if name in values:
                rows.append((label, values[name]))
                continue
            value = getattr(record, name)
            rows.append((label, value.isoformat() if hasattr(value, "isoformat") else str(value or "")))
    return rows


def _csv_lines(records: Iterable[ProvisionRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff"
    writer.writerow([label for label, _name in COLUMNS])
    yield flush()
    for record in records:
        writer.writerow([value for _label, value in record_values(record)])
        yield flush()


def provision_csv(records: Iterable[ProvisionRecord]) -> Iterator[str]:
    """The records as CSV lines, starting with the BOM and the header row."""
    return _csv_lines(records)


def provision_pdf(record: ProvisionRecord) -> bytes:
    from portal.lib.pdf import render_pdf

    return render_pdf("provision_record.html", {"record": record, "rows": record_values(record),
                                                "printed_at": timezone.localtime()})
