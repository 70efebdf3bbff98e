"""What a grant owes from the day it starts: its provision record (提供記録, REGULATION.md a5) and
the schedule of its usage reports (利用報告, a8).

Both are written by ``grant_start`` (``portal.access.services.grants``) and read by the reports
module, which stands above the grants module (it ends and refreshes grants); they live here, below
both, so neither imports the other's callers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.access.models import (
    Custodian,
    Grant,
    LegalBasis,
    ProcessingLevel,
    ProvisionRecord,
    UsageReport,
)
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.optout.selectors import published_notices_for
from portal.societies.models import Society

# --- Retention (REGULATION.md (c)) ---------------------------------------------------------------
PROVIDER_RETENTION_YEARS = 3  # from the (last) date of provision
RECIPIENT_RETENTION_YEARS = 5  # from the date the study's completion was reported

RECORDER = "データ共有ポータル（自動作成）"
MEDIUM = "電磁的記録（データ共有ポータルのデータベース）"


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def grant_society(grant: Grant) -> Society | None:
    if grant.society_id:
        return grant.society
    release = grant.releases.select_related("dataset__society").first()
    return release.dataset.society if release else None


# --- Provision records ----------------------------------------------------------------------------


def _person(user: User | None) -> str:
    if user is None:
        return ""
    return user.full_name or user.email


def _protocol_title(protocol: Any) -> str:
    version = protocol.versions.order_by("-number").first()
    if version is None:
        return ""
    return version.items.filter(key="title").values_list("body", flat=True).first() or ""


def _provision_fields(grant: Grant) -> dict[str, Any]:
    request = grant.access_request
    society = grant_society(grant)
    releases = list(grant.releases.select_related("dataset__protocol__institution", "dataset__protocol__principal_investigator")
                    .order_by("dataset_id", "version"))
    datasets = list({release.dataset_id: release.dataset for release in releases}.values())
    organization = society.organization if society and society.organization_id else None

    subject_lines = [
        f"対象: {release} の {release.case_count} 名" for release in releases
    ]
    subject_identification = "仮名ID（学会共通ハッシュID）による。" + "、".join(subject_lines)
    data_lines = []
    for release in releases:
        dataset = release.dataset
        detail = "、".join(part for part in [str(dataset.get_modality_display()), dataset.body_part] if part)
        data_lines.append(
            f"{dataset.title_ja}（{detail}）{release}: 症例 {release.case_count} 件、"
            f"画像 {release.image_count} 件、ファイル {release.file_count} 件"
        )
    history_lines = []
    consent_lines = []
    responsible = []
    for dataset in datasets:
        protocol = dataset.protocol
        institution = protocol.institution.name_ja if protocol.institution_id else ""
        period = ""
        if dataset.collection_start or dataset.collection_end:
            period = f"{dataset.collection_start or ''}〜{dataset.collection_end or ''}に"
        title = _protocol_title(protocol)
        history_lines.append(
            f"{dataset.title_ja}: 研究計画 {protocol.number or ''}{f'「{title}」' if title else ''}"
            f"（{institution}）に基づき{period}診療の過程で取得された臨床画像を、"
            f"{society.name_ja if society else ''}のデータベースに登録したもの"
        )
        notices = list(published_notices_for(dataset))
        if notices:
            numbers = "、".join(
                f"{notice.reference}（公開日 {timezone.localdate(notice.first_published_at) if notice.first_published_at else ''}）"
                for notice in notices
            )
            consent_lines.append(f"{dataset.title_ja}: 倫理指針に基づくオプトアウト手続を実施（通知番号 {numbers}）")
        else:
            consent_lines.append(f"{dataset.title_ja}: 公開中のオプトアウト通知なし")
        pi = _person(protocol.principal_investigator)
        if pi and pi not in responsible:
            responsible.append(pi)

    legal_basis = (request.legal_basis if request else "") or LegalBasis.OPT_OUT
    consent_lines.append(f"提供の法的根拠: {LegalBasis(legal_basis).label}")  # in Japanese: see the caller
    processing = (request.processing_level if request else "") or ProcessingLevel.PSEUDONYMISED
    foreign = "なし"
    if request and request.foreign_access:
        foreign = f"あり（{request.foreign_country or '国名未記載'}）"

    study_reference = ""
    if request:
        if request.ethics_protocol_id:
            study_reference = request.ethics_protocol.number or ""
        else:
            study_reference = request.ethics_approval_number
        if request.reference:
            study_reference = f"{study_reference}（申請番号 {request.reference}）" if study_reference else request.reference

    provided_from = timezone.localdate(grant.starts_at)
    provided_until = timezone.localdate(grant.expires_at)
    recorder = RECORDER
    if grant.created_by_id:
        recorder = f"{_person(grant.created_by)}（{RECORDER}）"
    return {
        "provided_from": provided_from,
        "provided_until": provided_until,
        "provider_name": society.name_ja if society else "",
        "provider_address": organization.address if organization else "",
        "provider_head": organization.representative if organization else "",
        "provider_responsible": "、".join(responsible),
        "recipient_name": request.organization.name_ja if request else "",
        "recipient_address": request.organization.address if request else "",
        "recipient_head": request.organization.representative if request else "",
        "recipient_responsible": _person(request.principal_investigator) if request else "",
        "study_title": request.title if request else grant.reference,
        "study_reference": study_reference,
        "subject_identification": subject_identification,
        "data_items": "\n".join(data_lines),
        "acquisition_history": "\n".join(history_lines),
        "consent_status": "\n".join(consent_lines),
        "legal_basis": legal_basis,
        "processing_state": processing,
        "foreign_provision": foreign,
        "recorded_by": recorder[:200],
        "record_medium": MEDIUM,
        # The provision lasts the grant's term: three years from its last day.
        "provider_keep_until": add_years(provided_until, PROVIDER_RETENTION_YEARS),
        "recipient_keep_until": None,
    }


def provision_record_create(*, grant: Grant, custodian: str = Custodian.PROVIDER) -> ProvisionRecord:
    """Write the grant's provision record (once; a second call returns the first record).

    ``custodian`` (保管者) is set here, once: the provider keeps the record unless it delegates
    custody to the recipient (REGULATION.md a5)."""
    if custodian not in Custodian.values:
        raise ValidationError({"custodian": _("Choose who keeps the provision record.")})
    if custodian == Custodian.RECIPIENT and grant.access_request_id is None:
        raise ValidationError({"custodian": _("Custody can be delegated only to the recipient of an application.")})
    with transaction.atomic():
        existing = ProvisionRecord.objects.filter(grant=grant).first()
        if existing is not None:
            return existing
        with translation.override("ja"):
            fields = _provision_fields(grant)
        fields["custodian"] = custodian
        fields["custodian_name"] = (
            fields["recipient_name"] if custodian == Custodian.RECIPIENT else fields["provider_name"]
        )
        record = ProvisionRecord.objects.create(grant=grant, **fields)
        audit_record(
            action="access.provision_recorded", actor=grant.created_by, target=record,
            details={
                "grant": grant.reference,
                "provided_from": record.provided_from.isoformat(),
                "provided_until": record.provided_until.isoformat(),
                "provider_keep_until": record.provider_keep_until.isoformat(),
                "legal_basis": record.legal_basis,
                "custodian": record.custodian,
                "custodian_name": record.custodian_name,
            },
        )
    return record


# --- Usage reports: schedule ----------------------------------------------------------------------


def usage_reports_schedule(*, grant: Grant) -> list[UsageReport]:
    """The grant's reports: annual ones a year apart before its expiry, and the end-of-use report."""
    start = timezone.localdate(grant.starts_at)
    expiry = timezone.localdate(grant.expires_at)
    reports = []
    with transaction.atomic():
        year = 1
        while (due := add_years(start, year)) < expiry:
            report, _created = UsageReport.objects.get_or_create(
                grant=grant, kind=UsageReport.Kind.ANNUAL, period_to=due,
                defaults={"due_on": due, "period_from": add_years(start, year - 1)},
            )
            reports.append(report)
            year += 1
        # An extended grant: the end-of-use report not yet submitted moves to the new end.
        UsageReport.objects.filter(
            grant=grant, kind=UsageReport.Kind.END_OF_USE, status=UsageReport.Status.DUE
        ).exclude(period_to=expiry).update(period_to=expiry, due_on=expiry)
        report, _created = UsageReport.objects.get_or_create(
            grant=grant, kind=UsageReport.Kind.END_OF_USE, period_to=expiry,
            defaults={"due_on": expiry, "period_from": start},
        )
        reports.append(report)
    return reports
