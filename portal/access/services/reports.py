"""Provision records (提供記録, REGULATION.md a5) and usage reports (利用報告, a8).

Every grant gets one ``ProvisionRecord`` written when it starts, in Japanese, holding what both the
ethics guideline (第8の3) and the APPI (Art. 29/30) ask for, kept for the provider's three years
and the recipient's five years after the study's completion is reported.

A grant owes an annual usage report each year of its term and an end-of-use report, with a
deletion certificate, at its expiry. Overdue reports are enforced by a daily beat task
(``access.enforce_usage_reports``): a reminder every 30 days after the due date, restricted access
(no new links) at 90 days with the society's stewards told, and the head of the applicant's
institution told at 180 days. Submitting the report lifts the restriction.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.access.models import (
    Grant,
    LegalBasis,
    ProcessingLevel,
    ProvisionRecord,
    RequestStatus,
    SecurityAnswer,
    UsageReport,
)
from portal.accounts.models import OrganizationMembership, User
from portal.accounts.roles import Role, has_role
from portal.audit.services import audit_record
from portal.lib.filetypes import PDF, detect_document_type
from portal.societies.models import Society, SocietyMembership

# --- Thresholds (days after a report's due date) ------------------------------------------------
REMINDER_EVERY_DAYS = 30
RESTRICT_AFTER_DAYS = 90
INSTITUTION_AFTER_DAYS = 180

# --- Retention (REGULATION.md (c)) ---------------------------------------------------------------
PROVIDER_RETENTION_YEARS = 3  # from the (last) date of provision
RECIPIENT_RETENTION_YEARS = 5  # from the date the study's completion was reported

DELETION_CERTIFICATE_MAX_BYTES = 20 * 1024 * 1024
OUTPUT_KINDS = ("paper", "presentation", "patent", "model", "approval")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:")

RECORDER = "データ共有ポータル（自動作成）"
MEDIUM = "電磁的記録（データ共有ポータルのデータベース）"

# Grants whose reports are still enforced: every one not ended by an accepted end-of-use report.
_ENFORCED = [Grant.Status.ACTIVE, Grant.Status.PAUSED, Grant.Status.EXPIRED, Grant.Status.REVOKED]


# The legal terms of REGULATION.md a5, written into the record in Japanese whatever the UI language.
LEGAL_BASIS_JA = {
    LegalBasis.CONSENT: "インフォームド・コンセント",
    LegalBasis.OPT_OUT: "倫理指針に基づくオプトアウト",
    LegalBasis.ACADEMIC_EXEMPTION: "個人情報保護法第27条第1項第5号〜第7号（学術研究例外）",
    LegalBasis.PUBLIC_HEALTH: "個人情報保護法第27条第1項第3号（公衆衛生例外）",
    LegalBasis.JOINT_USE: "共同利用",
    LegalBasis.OUTSOURCING: "委託",
    LegalBasis.PSEUDONYMISED_JOINT_USE: "仮名加工情報の共同利用",
    LegalBasis.ANONYMISED: "匿名加工情報",
    LegalBasis.NEXT_GENERATION_ACT: "次世代医療基盤法",
}
PROCESSING_JA = {
    ProcessingLevel.PSEUDONYMISED: "仮名加工情報",
    ProcessingLevel.ANONYMISED: "匿名加工情報",
    ProcessingLevel.STATISTICS: "統計情報",
}


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def output_kind_labels() -> dict[str, str]:
    return {
        "paper": _("Paper"),
        "presentation": _("Conference presentation"),
        "patent": _("Patent application"),
        "model": _("AI model or algorithm"),
        "approval": _("Regulatory approval application"),
    }


# --- Who may act ----------------------------------------------------------------------------------


def _society_of(grant: Grant) -> Society | None:
    if grant.society_id:
        return grant.society
    release = grant.releases.select_related("dataset__society").first()
    return release.dataset.society if release else None


def may_review_reports(user: User | object, society: Society | None) -> bool:
    """Stewards and admins of the society (and the platform operator) accept usage reports."""
    if not getattr(user, "is_authenticated", False) or society is None:
        return False
    return has_role(user, Role.OPERATOR) or SocietyMembership.objects.filter(
        user_id=user.pk, society=society, role__in=["steward", "admin"]  # type: ignore[attr-defined]
    ).exists()


def is_named_user(user: User | object, grant: Grant) -> bool:
    return getattr(user, "is_authenticated", False) and grant.users.filter(pk=user.pk).exists()  # type: ignore[attr-defined]


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
    from portal.optout.selectors import published_notices_for

    request = grant.access_request
    society = _society_of(grant)
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
    consent_lines.append(f"提供の法的根拠: {LEGAL_BASIS_JA[LegalBasis(legal_basis)]}")
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


def provision_record_create(*, grant: Grant) -> ProvisionRecord:
    """Write the grant's provision record (once; a second call returns the first record)."""
    with transaction.atomic():
        existing = ProvisionRecord.objects.filter(grant=grant).first()
        if existing is not None:
            return existing
        with translation.override("ja"):
            fields = _provision_fields(grant)
        record = ProvisionRecord.objects.create(grant=grant, **fields)
        audit_record(
            action="access.provision_recorded", actor=grant.created_by, target=record,
            details={
                "grant": grant.reference,
                "provided_from": record.provided_from.isoformat(),
                "provided_until": record.provided_until.isoformat(),
                "provider_keep_until": record.provider_keep_until.isoformat(),
                "legal_basis": record.legal_basis,
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


# --- Usage reports: submission --------------------------------------------------------------------


def _normalise_doi(value: str) -> str:
    value = value.strip()
    for prefix in _DOI_PREFIXES:
        if value.lower().startswith(prefix):
            return value[len(prefix):]
    return value


def clean_outputs(outputs: Any) -> tuple[list[dict[str, str]], list[str]]:
    """The outputs as stored, and one message per bad row (1-based)."""
    cleaned: list[dict[str, str]] = []
    problems: list[str] = []
    if outputs in (None, ""):
        return cleaned, problems
    if not isinstance(outputs, list):
        return cleaned, [_("Outputs must be a list.")]
    for index, row in enumerate(outputs, start=1):
        if not isinstance(row, dict):
            problems.append(_("Output %(n)s: not understood.") % {"n": index})
            continue
        kind = str(row.get("kind") or "").strip()
        title = str(row.get("title") or "").strip()
        doi = _normalise_doi(str(row.get("doi") or ""))
        number = str(row.get("number") or "").strip()
        if not (kind or title or doi or number):
            continue  # a blank row of the form
        if kind not in OUTPUT_KINDS:
            problems.append(_("Output %(n)s: choose the kind.") % {"n": index})
        if not title:
            problems.append(_("Output %(n)s: give the title.") % {"n": index})
        if doi and not DOI_RE.match(doi):
            problems.append(
                _("Output %(n)s: “%(doi)s” is not a DOI (it looks like 10.1234/abc).") % {"n": index, "doi": doi}
            )
        cleaned.append({"kind": kind, "title": title, "doi": doi, "number": number})
    return cleaned, problems


def _is_image(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    return None


_EXTENSIONS = {PDF: ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif"}


def _certificate_type(upload: IO[bytes]) -> str | None:
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    media_type = _is_image(head)
    if media_type:
        return media_type
    return PDF if detect_document_type(head, upload) == PDF else None


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _grant_overdue_beyond_restriction(grant: Grant, today: date, exclude: int | None = None) -> bool:
    return (
        UsageReport.objects.filter(
            grant=grant, status=UsageReport.Status.DUE,
            due_on__lte=today - timedelta(days=RESTRICT_AFTER_DAYS),
        )
        .exclude(pk=exclude)
        .exists()
    )


def usage_report_submit(
    *,
    report: UsageReport,
    by: User,
    progress: str = "",
    deviations: str = "",
    user_changes: str = "",
    security_recheck: str = "",
    outputs: Any = None,
    results_summary: str = "",
    deletion_date: date | None = None,
    deletion_method: str = "",
    deletion_certificate: UploadedFile | None = None,
) -> UsageReport:
    """A named user of the grant submits a due report; a restriction it caused is lifted."""
    with transaction.atomic():
        report = UsageReport.objects.select_for_update().select_related("grant").get(pk=report.pk)
        grant = report.grant
        if not is_named_user(by, grant):
            raise PermissionDenied(_("Only a named user of the grant can submit its usage reports."))
        if report.status != UsageReport.Status.DUE:
            raise ValidationError(_("This report was already submitted."), code="not_due")
        errors: dict[str, list[str]] = {}
        texts = {
            "progress": (progress, _("Describe the progress of the research.")),
            "deviations": (deviations, _("State any non-compliance, deviation or leak (or “none”).")),
            "user_changes": (user_changes, _("State the users added or removed (or “none”).")),
            "security_recheck": (security_recheck, _("Describe the re-check of the security measures.")),
        }
        end_of_use = report.kind == UsageReport.Kind.END_OF_USE
        if end_of_use:
            texts["results_summary"] = (results_summary, _("Summarise the results of the research."))
            texts["deletion_method"] = (deletion_method, _("Describe how the data were deleted."))
        for name, (value, message) in texts.items():
            if not (value or "").strip():
                errors[name] = [message]
        cleaned_outputs, problems = clean_outputs(outputs)
        if problems:
            errors["outputs"] = problems
        today = timezone.localdate()
        certificate_sha256 = ""
        if end_of_use:
            if deletion_date is None:
                errors["deletion_date"] = [_("Give the date the data were deleted.")]
            elif deletion_date > today:
                errors["deletion_date"] = [_("The deletion date cannot be in the future.")]
            if deletion_certificate is None:
                errors["deletion_certificate"] = [_("Attach the deletion certificate (PDF or image).")]
            elif deletion_certificate.size and deletion_certificate.size > DELETION_CERTIFICATE_MAX_BYTES:
                errors["deletion_certificate"] = [_("The deletion certificate is larger than 20 MB.")]
            elif _certificate_type(deletion_certificate) is None:
                errors["deletion_certificate"] = [
                    _("The deletion certificate must be a PDF or an image (PNG, JPEG, TIFF).")
                ]
            else:
                certificate_sha256 = _sha256(deletion_certificate)
        if errors:
            raise ValidationError(errors)

        report.progress = progress.strip()
        report.deviations = deviations.strip()
        report.user_changes = user_changes.strip()
        report.security_recheck = security_recheck.strip()
        report.outputs = cleaned_outputs
        report.results_summary = (results_summary or "").strip()
        if end_of_use:
            report.deletion_date = deletion_date
            report.deletion_method = deletion_method.strip()
            extension = _EXTENSIONS[_certificate_type(deletion_certificate) or PDF]
            report.deletion_certificate.save(
                f"{grant.reference}-{report.pk}-{certificate_sha256[:12]}{extension}", deletion_certificate,
                save=False,
            )
            report.deletion_certificate_sha256 = certificate_sha256
        report.status = UsageReport.Status.SUBMITTED
        report.submitted_by = by
        report.submitted_at = timezone.now()
        report.save()
        audit_record(
            action="access.usage_report_submitted", actor=by, target=report,
            details={"grant": grant.reference, "kind": report.kind, "due_on": report.due_on.isoformat(),
                     "outputs": len(cleaned_outputs), "deletion_certificate_sha256": certificate_sha256},
        )
        # The security re-check of a report re-attests the application's self-assessment for
        # another year; a grant paused for want of it resumes.
        if report.kind == UsageReport.Kind.ANNUAL and grant.access_request_id is not None:
            reattested = SecurityAnswer.objects.filter(access_request_id=grant.access_request_id).update(
                answered_at=timezone.now()
            )
            audit_record(action="access.security_reattested", actor=by, target=grant,
                         details={"report": report.pk, "items": reattested})
            if grant.status == Grant.Status.PAUSED:
                from portal.access.services.grants import grant_refresh

                grant_refresh(grant=grant)
        grant = Grant.objects.select_for_update().get(pk=grant.pk)
        if grant.restricted and not _grant_overdue_beyond_restriction(grant, today):
            grant.restricted = False
            grant.save(update_fields=["restricted"])
            audit_record(action="access.grant_unrestricted", actor=by, target=grant,
                         details={"report": report.pk})
        _mail(
            _("A usage report was submitted: %(grant)s") % {"grant": grant.reference},
            _report_body(report),
            _steward_emails(grant),
        )
    return report


def usage_report_accept(*, report: UsageReport, by: User) -> UsageReport:
    """A steward accepts a submitted report; an end-of-use report ends the grant and may close the request."""
    with transaction.atomic():
        report = UsageReport.objects.select_for_update().select_related("grant").get(pk=report.pk)
        grant = report.grant
        if not may_review_reports(by, _society_of(grant)):
            raise PermissionDenied(_("Only a data steward of the society can accept its usage reports."))
        if report.status != UsageReport.Status.SUBMITTED:
            raise ValidationError(_("Only a submitted report can be accepted."), code="not_submitted")
        report.status = UsageReport.Status.ACCEPTED
        report.save(update_fields=["status"])
        details: dict[str, Any] = {"grant": grant.reference, "kind": report.kind}
        if report.kind == UsageReport.Kind.END_OF_USE:
            from portal.access.services.grants import grant_end

            today = timezone.localdate()
            record = ProvisionRecord.objects.select_for_update().filter(grant=grant).first()
            if record is not None and record.recipient_keep_until is None:
                record.recipient_keep_until = add_years(today, RECIPIENT_RETENTION_YEARS)
                record.save(update_fields=["recipient_keep_until"])
                details["recipient_keep_until"] = record.recipient_keep_until.isoformat()
            if grant.status != Grant.Status.ENDED:
                grant_end(grant=grant, by=by)
            request = grant.access_request
            if request is not None and request.status in (RequestStatus.GRANTED, RequestStatus.ENDING):
                open_grants = request.grants.exclude(pk=grant.pk).filter(
                    status__in=[Grant.Status.ACTIVE, Grant.Status.PAUSED]
                )
                if not open_grants.exists():
                    from portal.access.services.requests import access_request_close

                    access_request_close(access_request=request, by=by)
                    details["request_closed"] = request.reference
        audit_record(action="access.usage_report_accepted", actor=by, target=report, details=details)
        if report.submitted_by_id:
            _mail(
                _("Your usage report was accepted: %(grant)s") % {"grant": grant.reference},
                _report_body(report),
                [report.submitted_by.email],  # type: ignore[union-attr]
            )
    return report


# --- Overdue reports ------------------------------------------------------------------------------


def _mail(subject: str, body: str, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    transaction.on_commit(
        lambda: send_mail(f"[{_('Data access')}] {subject}", body, settings.DEFAULT_FROM_EMAIL, recipients,
                          fail_silently=False)
    )


def _report_body(report: UsageReport, detail: str = "") -> str:
    grant = report.grant
    lines = [
        f"{grant.reference} {grant.access_request.title if grant.access_request_id else ''}".strip(),
        f"{report.get_kind_display()} ({_('due on')} {report.due_on.isoformat()})",
        detail,
        f"{settings.PORTAL_BASE_URL}/access/reports/{report.pk}/",
    ]
    return "\n\n".join(line for line in lines if line)


def _steward_emails(grant: Grant) -> list[str]:
    society = _society_of(grant)
    if society is None:
        return []
    return list(
        SocietyMembership.objects.filter(society=society, role="steward", user__is_active=True)
        .values_list("user__email", flat=True)
    )


def _applicant_emails(grant: Grant) -> list[str]:
    emails = list(grant.users.filter(is_active=True).values_list("email", flat=True))
    request = grant.access_request
    if request is not None:
        emails += [request.applicant.email, request.principal_investigator.email]
    return emails


def _head_emails(grant: Grant) -> list[str]:
    request = grant.access_request
    if request is None:
        return []
    return list(
        OrganizationMembership.objects.filter(
            organization_id=request.organization_id, role=OrganizationMembership.Role.HEAD, user__is_active=True
        ).values_list("user__email", flat=True)
    )


def _enforce_one(report_id: int, today: date) -> list[str]:
    steps: list[str] = []
    with transaction.atomic():
        report = UsageReport.objects.select_for_update().select_related("grant").get(pk=report_id)
        if report.status != UsageReport.Status.DUE:
            return steps
        grant = report.grant
        if report.kind == UsageReport.Kind.ANNUAL and grant.status not in (Grant.Status.ACTIVE, Grant.Status.PAUSED):
            # An expired or revoked grant owes the annual reports that fell due while it was in force.
            stopped = timezone.localdate(grant.ended_at or grant.expires_at)
            if report.due_on > stopped:
                return steps
        days = (today - report.due_on).days
        owed = days // REMINDER_EVERY_DAYS
        if days >= REMINDER_EVERY_DAYS and report.reminders_sent < owed:
            report.reminders_sent = owed
            report.last_reminder_at = timezone.now()
            report.save(update_fields=["reminders_sent", "last_reminder_at"])
            audit_record(action="access.usage_report_reminded", actor=None, target=report,
                         details={"grant": grant.reference, "days_overdue": days, "reminder": owed})
            _mail(
                _("A usage report is overdue: %(grant)s") % {"grant": grant.reference},
                _report_body(report, _("The report was due %(days)s days ago. Access is restricted (no new "
                                       "links) %(restrict)s days after the due date, and the head of your "
                                       "institution is told after %(head)s days.")
                             % {"days": days, "restrict": RESTRICT_AFTER_DAYS, "head": INSTITUTION_AFTER_DAYS}),
                _applicant_emails(grant),
            )
            steps.append("reminded")
        if days >= RESTRICT_AFTER_DAYS:
            grant = Grant.objects.select_for_update().get(pk=grant.pk)
            if not grant.restricted and grant.status != Grant.Status.ENDED:
                grant.restricted = True
                grant.save(update_fields=["restricted"])
                audit_record(action="access.grant_restricted", actor=None, target=grant,
                             details={"report": report.pk, "days_overdue": days})
                _mail(
                    _("Access restricted for an overdue usage report: %(grant)s") % {"grant": grant.reference},
                    _report_body(report, _("No new download links are issued until the report is submitted.")),
                    _steward_emails(grant) + _applicant_emails(grant),
                )
                steps.append("restricted")
        if days >= INSTITUTION_AFTER_DAYS and report.institution_notified_at is None:
            heads = _head_emails(grant)
            report.institution_notified_at = timezone.now()
            report.save(update_fields=["institution_notified_at"])
            audit_record(action="access.usage_report_institution_notified", actor=None, target=report,
                         details={"grant": grant.reference, "days_overdue": days, "heads": sorted(heads)})
            body = _report_body(
                report,
                _("A usage report owed by your institution under this data-access grant is %(days)s days overdue. "
                  "Please see that it is submitted.") % {"days": days},
            )
            subject = _("Overdue usage report at your institution: %(grant)s") % {"grant": grant.reference}
            # No head on record: the society's stewards are told instead, to reach the institution.
            _mail(subject, body, heads or _steward_emails(grant))
            steps.append("institution_notified")
    return steps


def usage_reports_enforce(*, today: date | None = None) -> dict[str, int]:
    """The daily enforcement run; each step is remembered, so a second run does nothing new."""
    today = today or timezone.localdate()
    counts = {"reminded": 0, "restricted": 0, "institution_notified": 0}
    overdue = UsageReport.objects.filter(
        status=UsageReport.Status.DUE, due_on__lte=today - timedelta(days=REMINDER_EVERY_DAYS),
        grant__status__in=_ENFORCED,
    ).order_by("due_on", "pk").values_list("pk", flat=True)
    for report_id in list(overdue):
        for step in _enforce_one(report_id, today):
            counts[step] += 1
    return counts
