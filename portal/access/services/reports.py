"""Provision records (提供記録, REGULATION.md a5) and usage reports (利用報告, a8).

Every grant gets one ``ProvisionRecord`` written when it starts, in Japanese, holding what both the
ethics guideline (第8の3) and the APPI (Art. 29/30) ask for, kept for the provider's three years
and the recipient's five years after the study's completion is reported.

A grant owes an annual usage report each year of its term and an end-of-use report, with a
deletion certificate, at its expiry; a named user who stops the research early files a stop report
(中止報告) instead, which stands for the end-of-use report. Every output reported must cite the
dataset (its accession, the dataset's slug). A submitted report is confirmed by the principal
investigator and by the head of the applicant's institution (two confirmations, each with who and
when), then accepted by a steward of the society.

Overdue reports are enforced by a daily beat task (``access.enforce_usage_reports``): a reminder
every ``PORTAL_USAGE_REPORT_REMINDER_DAYS`` (30) days after the due date; at
``PORTAL_USAGE_REPORT_RESTRICT_DAYS`` (180, as the NBDC rules say) restricted access (no new links)
with the society's stewards told, and at ``PORTAL_USAGE_REPORT_HEAD_DAYS`` (180) the head of the
applicant's institution told. Submitting the report lifts the restriction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import (
    Grant,
    ProvisionRecord,
    RequestStatus,
    SecurityAnswer,
    UsageReport,
)
from portal.access.services.grants import grant_end, grant_refresh
from portal.access.services.records import (
    RECIPIENT_RETENTION_YEARS,
    add_years,
    grant_society,
)
from portal.access.services.requests import access_request_close
from portal.access.workflow import USAGE_REPORT
from portal.accounts.models import OrganizationMembership, User
from portal.accounts.roles import Role, has_role
from portal.audit.services import audit_record
from portal.lib.filetypes import PDF, detect_document_type
from portal.lib.workflow import transition
from portal.notifications.services import notification_send
from portal.societies.models import Society, SocietyMembership
from portal.societies.selectors import member_users

# --- Thresholds (days after a report's due date; settings, read when used) ----------------------


def reminder_every_days() -> int:
    return int(settings.PORTAL_USAGE_REPORT_REMINDER_DAYS)


def restrict_after_days() -> int:
    return int(settings.PORTAL_USAGE_REPORT_RESTRICT_DAYS)


def institution_after_days() -> int:
    return int(settings.PORTAL_USAGE_REPORT_HEAD_DAYS)



DELETION_CERTIFICATE_MAX_BYTES = 20 * 1024 * 1024
OUTPUT_KINDS = ("paper", "presentation", "patent", "model", "approval")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
# Results registered in jRCT (jRCT + 10 digits, or jRCTs + 9) or UMIN-CTR (UMIN + 9 digits).
REGISTRY_RE = re.compile(r"^(jRCT(?:s\d{9}|\d{10})|UMIN\d{9})$")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:")

# Grants whose reports are still enforced: every one not ended by an accepted end-of-use report.
_ENFORCED = [Grant.Status.ACTIVE, Grant.Status.PAUSED, Grant.Status.EXPIRED, Grant.Status.REVOKED]



def output_kind_labels() -> dict[str, str]:
    return {
        "paper": _("Paper"),
        "presentation": _("Conference presentation"),
        "patent": _("Patent application"),
        "model": _("AI model or algorithm"),
        "approval": _("Regulatory approval application"),
    }


# --- Who may act ----------------------------------------------------------------------------------



def may_review_reports(user: User | object, society: Society | None) -> bool:
    """Stewards and admins of the society (and the platform operator) accept usage reports."""
    if not getattr(user, "is_authenticated", False) or society is None:
        return False
    return has_role(user, Role.OPERATOR) or SocietyMembership.objects.filter(
        user_id=user.pk, society=society, role__in=["steward", "admin"]  # type: ignore[attr-defined]
    ).exists()


def is_named_user(user: User | object, grant: Grant) -> bool:
    return getattr(user, "is_authenticated", False) and grant.users.filter(pk=user.pk).exists()  # type: ignore[attr-defined]


# --- Usage reports: submission --------------------------------------------------------------------


def _normalise_doi(value: str) -> str:
    value = value.strip()
    for prefix in _DOI_PREFIXES:
        if value.lower().startswith(prefix):
            return value[len(prefix):]
    return value


def dataset_citations(grant: Grant) -> list[tuple[str, str]]:
    """(accession, citation text) of each dataset of the grant: what every reported output must cite."""
    datasets = {release.dataset_id: release.dataset
                for release in grant.releases.select_related("dataset__society").order_by("dataset_id", "version")}
    return [
        (dataset.slug, f"{dataset.society.name_ja}「{dataset.title_ja}」（{dataset.slug}）")
        for dataset in datasets.values()
    ]


def clean_outputs(outputs: Any, *, citations: list[tuple[str, str]] | None = None) -> tuple[list[dict[str, str]], list[str]]:
    """The outputs as stored, and one message per bad row (1-based).

    With ``citations`` (from ``dataset_citations``), each output must cite one of the datasets: its
    citation as printed in the output has to contain the dataset's accession (NBDC rule)."""
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
        citation = str(row.get("citation") or "").strip()
        if not (kind or title or doi or number or citation):
            continue  # a blank row of the form
        if kind not in OUTPUT_KINDS:
            problems.append(_("Output %(n)s: choose the kind.") % {"n": index})
        if not title:
            problems.append(_("Output %(n)s: give the title.") % {"n": index})
        if doi and not DOI_RE.match(doi):
            problems.append(
                _("Output %(n)s: “%(doi)s” is not a DOI (it looks like 10.1234/abc).") % {"n": index, "doi": doi}
            )
        if citations and not any(accession.lower() in citation.lower() for accession, _text in citations):
            problems.append(
                _("Output %(n)s: it does not cite the dataset. Give the citation as printed in the output, "
                  "naming the dataset's accession, for example “%(example)s”.")
                % {"n": index, "example": citations[0][1]}
            )
        cleaned.append({"kind": kind, "title": title, "doi": doi, "number": number, "citation": citation})
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
            due_on__lte=today - timedelta(days=restrict_after_days()),
        )
        .exclude(pk=exclude)
        .exists()
    )


def _report_text_errors(report: UsageReport, values: dict[str, str]) -> dict[str, list[str]]:
    """The free-text answers the report's kind requires and that are blank."""
    texts = {
        "progress": _("Describe the progress of the research."),
        "deviations": _("State any non-compliance, deviation or leak (or “none”)."),
        "user_changes": _("State the users added or removed (or “none”)."),
        "security_recheck": _("Describe the re-check of the security measures."),
    }
    if report.kind == UsageReport.Kind.STOP:
        texts["stop_reason"] = _("Say why the research stopped.")
    if report.kind in UsageReport.FINAL_KINDS:
        texts["results_summary"] = _("Summarise the results of the research.")
        texts["deletion_method"] = _("Describe how the data were deleted.")
    return {name: [message] for name, message in texts.items() if not (values[name] or "").strip()}


def _registry_errors(registry_number: str) -> dict[str, list[str]]:
    if registry_number and not REGISTRY_RE.match(registry_number):
        return {"registry_number": [_(
            "“%(number)s” is not a jRCT or UMIN-CTR number (jRCT1234567890, jRCTs031180001 or "
            "UMIN000012345).") % {"number": registry_number}]}
    return {}


def _retention_errors(retained_items: str, retention_reason: str, retained_until: date | None,
                      today: date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not retained_items:
        if retention_reason or retained_until:
            errors["retained_items"] = [_("Name what is kept after the end.")]
        return errors
    if not retention_reason:
        errors["retention_reason"] = [_("Say why these are kept after the end.")]
    if retained_until is None:
        errors["retained_until"] = [_("Say until when they are kept.")]
    elif retained_until < today:
        errors["retained_until"] = [_("The date until which they are kept cannot be in the past.")]
    return errors


def _deletion_date_errors(deletion_date: date | None, today: date) -> dict[str, list[str]]:
    if deletion_date is None:
        return {"deletion_date": [_("Give the date the data were deleted.")]}
    if deletion_date > today:
        return {"deletion_date": [_("The deletion date cannot be in the future.")]}
    return {}


def _certificate_check(certificate: UploadedFile | None) -> tuple[dict[str, list[str]], str]:
    """(errors, sha256 of the certificate when it is acceptable)."""
    if certificate is None:
        return {"deletion_certificate": [_("Attach the deletion certificate (PDF or image).")]}, ""
    if certificate.size and certificate.size > DELETION_CERTIFICATE_MAX_BYTES:
        return {"deletion_certificate": [_("The deletion certificate is larger than 20 MB.")]}, ""
    if _certificate_type(certificate) is None:
        return {"deletion_certificate": [
            _("The deletion certificate must be a PDF or an image (PNG, JPEG, TIFF).")]}, ""
    return {}, _sha256(certificate)


def _after_submit(report: UsageReport, grant: Grant, *, by: User, today: date) -> Grant:
    """Re-attest the self-assessment on an annual report and lift a restriction the report caused."""
    # The security re-check of a report re-attests the application's self-assessment for
    # another year; a grant paused for want of it resumes.
    if report.kind == UsageReport.Kind.ANNUAL and grant.access_request_id is not None:
        reattested = SecurityAnswer.objects.filter(access_request_id=grant.access_request_id).update(
            answered_at=timezone.now()
        )
        audit_record(action="access.security_reattested", actor=by, target=grant,
                     details={"report": report.pk, "items": reattested})
        if grant.status == Grant.Status.PAUSED:
            grant_refresh(grant=grant)
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    if grant.restricted and not _grant_overdue_beyond_restriction(grant, today):
        grant.restricted = False
        grant.save(update_fields=["restricted"])
        audit_record(action="access.grant_unrestricted", actor=by, target=grant,
                     details={"report": report.pk})
    return grant


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
    stop_reason: str = "",
    registry_number: str = "",
    retained_items: str = "",
    retention_reason: str = "",
    retained_until: date | None = None,
) -> UsageReport:
    """A named user of the grant submits a due report; a restriction it caused is lifted.

    The end-of-use and stop reports also carry the results' registration (jRCT or UMIN-CTR
    number, when the study is registered), what is kept after the end with its reason and until
    when, and the deletion of the rest; the stop report says why the research stopped."""
    with transaction.atomic():
        report = UsageReport.objects.select_for_update().select_related("grant").get(pk=report.pk)
        grant = report.grant
        if not is_named_user(by, grant):
            raise PermissionDenied(_("Only a named user of the grant can submit its usage reports."))
        if report.status != UsageReport.Status.DUE:
            raise ValidationError(_("This report was already submitted."), code="not_due")
        end_of_use = report.kind in UsageReport.FINAL_KINDS
        stop_reason = (stop_reason or report.stop_reason or "").strip()
        errors = _report_text_errors(report, {
            "progress": progress, "deviations": deviations, "user_changes": user_changes,
            "security_recheck": security_recheck, "stop_reason": stop_reason, "results_summary": results_summary,
            "deletion_method": deletion_method,
        })
        cleaned_outputs, problems = clean_outputs(outputs, citations=dataset_citations(grant))
        if problems:
            errors["outputs"] = problems
        today = timezone.localdate()
        certificate_sha256 = ""
        registry_number = (registry_number or "").strip()
        retained_items = (retained_items or "").strip()
        retention_reason = (retention_reason or "").strip()
        if end_of_use:
            errors.update(_registry_errors(registry_number))
            errors.update(_retention_errors(retained_items, retention_reason, retained_until, today))
            errors.update(_deletion_date_errors(deletion_date, today))
            certificate_errors, certificate_sha256 = _certificate_check(deletion_certificate)
            errors.update(certificate_errors)
        if errors:
            raise ValidationError(errors)

        report.progress = progress.strip()
        report.deviations = deviations.strip()
        report.user_changes = user_changes.strip()
        report.security_recheck = security_recheck.strip()
        report.outputs = cleaned_outputs
        report.results_summary = (results_summary or "").strip()
        if end_of_use:
            report.stop_reason = stop_reason
            report.registry_number = registry_number
            report.retained_items = retained_items
            report.retention_reason = retention_reason
            report.retained_until = retained_until if retained_items else None
            report.deletion_date = deletion_date
            report.deletion_method = deletion_method.strip()
            extension = _EXTENSIONS[_certificate_type(deletion_certificate) or PDF]
            report.deletion_certificate.save(
                f"{grant.reference}-{report.pk}-{certificate_sha256[:12]}{extension}", deletion_certificate,
                save=False,
            )
            report.deletion_certificate_sha256 = certificate_sha256
        transition(report, USAGE_REPORT, "submit", save=False)  # saved with the report just below
        report.submitted_by = by
        report.submitted_at = timezone.now()
        report.save()
        audit_record(
            action="access.usage_report_submitted", actor=by, target=report,
            details={"grant": grant.reference, "kind": report.kind, "due_on": report.due_on.isoformat(),
                     "outputs": len(cleaned_outputs), "deletion_certificate_sha256": certificate_sha256,
                     "registry_number": report.registry_number, "retained_items": bool(report.retained_items)},
        )
        grant = _after_submit(report, grant, by=by, today=today)
        _mail(
            _("A usage report was submitted: %(grant)s") % {"grant": grant.reference},
            _report_body(report),
            _stewards(grant), _report_url(report),
        )
        if grant.access_request_id is not None:
            _mail(
                _("A usage report awaits your confirmation: %(grant)s") % {"grant": grant.reference},
                _report_body(report, _("The principal investigator and the head of the institution each "
                                       "confirm the report before the society accepts it.")),
                [grant.access_request.principal_investigator, *_heads(grant)],  # type: ignore[union-attr]
                _report_url(report),
            )
    return report


# --- Usage reports: stop report and confirmations -------------------------------------------------


def usage_report_stop(*, grant: Grant, reason: str, by: User) -> UsageReport:
    """A named user says the research stopped early: a stop report (中止報告) is owed at once, and
    once accepted it stands for the end-of-use report."""
    reason = (reason or "").strip()
    with transaction.atomic():
        grant = Grant.objects.select_for_update().get(pk=grant.pk)
        if not is_named_user(by, grant):
            raise PermissionDenied(_("Only a named user of the grant can report that the research stopped."))
        if not reason:
            raise ValidationError({"stop_reason": _("Say why the research stopped.")})
        if grant.status not in (Grant.Status.ACTIVE, Grant.Status.PAUSED):
            raise ValidationError(_("Only a grant in force can be stopped."), code="not_live")
        if UsageReport.objects.filter(grant=grant, kind=UsageReport.Kind.STOP).exists():
            raise ValidationError(_("A stop report has already been opened for this grant."), code="stop_exists")
        today = timezone.localdate()
        report = UsageReport.objects.create(
            grant=grant, kind=UsageReport.Kind.STOP, due_on=today, period_from=timezone.localdate(grant.starts_at),
            period_to=today, stop_reason=reason,
        )
        audit_record(action="access.usage_report_stop_opened", actor=by, target=report,
                     details={"grant": grant.reference, "reason": reason})
        _mail(
            _("The research under a grant stopped: %(grant)s") % {"grant": grant.reference},
            _report_body(report, reason),
            _stewards(grant), _report_url(report),
        )
    return report


CONFIRM_AS = ("pi", "head")


def confirm_roles(user: User | object, grant: Grant) -> set[str]:
    """How ``user`` may confirm the grant's reports: as its principal investigator, as the head of
    the applicant's institution, or both."""
    request = grant.access_request
    if request is None or not getattr(user, "is_authenticated", False):
        return set()
    roles = set()
    if user.pk == request.principal_investigator_id:  # type: ignore[attr-defined]
        roles.add("pi")
    if OrganizationMembership.objects.filter(
        user_id=user.pk, organization_id=request.organization_id, role=OrganizationMembership.Role.HEAD  # type: ignore[attr-defined]
    ).exists():
        roles.add("head")
    return roles


def usage_report_confirm(*, report: UsageReport, as_role: str, by: User) -> UsageReport:
    """The principal investigator (``as_role="pi"``) or the head of the institution (``"head"``)
    confirms a submitted report; with both confirmations it is ready for the society."""
    if as_role not in CONFIRM_AS:
        raise ValidationError({"as_role": _("Confirm as the principal investigator or as the head.")})
    with transaction.atomic():
        report = UsageReport.objects.select_for_update(of=("self",)).select_related("grant__access_request").get(pk=report.pk)
        grant = report.grant
        if as_role not in confirm_roles(by, grant):
            if as_role == "pi":
                raise PermissionDenied(_("Only the principal investigator of the application can confirm as such."))
            raise PermissionDenied(_("Only the head of the applicant's institution can confirm as such."))
        if report.status != UsageReport.Status.SUBMITTED:
            raise ValidationError(_("Only a submitted report can be confirmed."), code="not_submitted")
        now = timezone.now()
        if as_role == "pi":
            if report.pi_confirmed_at is not None:
                raise ValidationError(_("The principal investigator has already confirmed this report."),
                                      code="confirmed")
            report.pi_confirmed_by, report.pi_confirmed_at = by, now
        else:
            if report.head_confirmed_at is not None:
                raise ValidationError(_("The head of the institution has already confirmed this report."),
                                      code="confirmed")
            report.head_confirmed_by, report.head_confirmed_at = by, now
        complete = report.pi_confirmed_at is not None and report.head_confirmed_at is not None
        confirmations = ["pi_confirmed_by", "pi_confirmed_at", "head_confirmed_by", "head_confirmed_at"]
        if complete:
            transition(report, USAGE_REPORT, "confirm", extra_fields=confirmations)
        else:
            report.save(update_fields=confirmations)
        audit_record(action="access.usage_report_confirmed", actor=by, target=report,
                     details={"grant": grant.reference, "as": as_role, "complete": complete})
        if complete:
            _mail(
                _("A usage report was confirmed and awaits acceptance: %(grant)s") % {"grant": grant.reference},
                _report_body(report),
                _stewards(grant), _report_url(report),
            )
    return report


def usage_report_accept(*, report: UsageReport, by: User) -> UsageReport:
    """A steward accepts a submitted report; an end-of-use report ends the grant and may close the request."""
    with transaction.atomic():
        report = UsageReport.objects.select_for_update().select_related("grant").get(pk=report.pk)
        grant = report.grant
        if not may_review_reports(by, grant_society(grant)):
            raise PermissionDenied(_("Only a data steward of the society can accept its usage reports."))
        if grant.access_request_id is None:
            acceptable = (UsageReport.Status.SUBMITTED, UsageReport.Status.CONFIRMED)
        else:
            acceptable = (UsageReport.Status.CONFIRMED,)
        if report.status not in acceptable:
            if report.status == UsageReport.Status.SUBMITTED:
                raise ValidationError(
                    _("The report is accepted once the principal investigator and the head of the institution "
                      "have both confirmed it."), code="not_confirmed")
            raise ValidationError(_("Only a submitted report can be accepted."), code="not_submitted")
        transition(report, USAGE_REPORT, "accept")
        details: dict[str, Any] = {"grant": grant.reference, "kind": report.kind}
        if report.kind == UsageReport.Kind.STOP:
            # The stop report stands for the end-of-use report and the reports not yet due.
            cancelled = UsageReport.objects.filter(grant=grant, status=UsageReport.Status.DUE).filter(
                Q(kind=UsageReport.Kind.END_OF_USE) | Q(due_on__gt=timezone.localdate())
            )
            details["cancelled_reports"] = sorted(cancelled.values_list("pk", flat=True))
            cancelled.delete()
        if report.kind in UsageReport.FINAL_KINDS:
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
                    access_request_close(access_request=request, by=by)
                    details["request_closed"] = request.reference
        audit_record(action="access.usage_report_accepted", actor=by, target=report, details=details)
        if report.submitted_by_id:
            _mail(
                _("Your usage report was accepted: %(grant)s") % {"grant": grant.reference},
                _report_body(report),
                [report.submitted_by], _report_url(report),
            )
    return report


# --- Overdue reports ------------------------------------------------------------------------------


def _mail(subject: str, body: str, recipients: Iterable[User | None], url: str) -> None:
    notification_send(recipients=recipients, area=_("Data access"), subject=subject, body=body, url=url)


def _report_url(report: UsageReport) -> str:
    return f"/access/reports/{report.pk}/"


def _report_body(report: UsageReport, detail: str = "") -> str:
    grant = report.grant
    lines = [
        f"{grant.reference} {grant.access_request.title if grant.access_request_id else ''}".strip(),
        f"{report.get_kind_display()} ({_('due on')} {report.due_on.isoformat()})",
        detail,
    ]
    return "\n\n".join(line for line in lines if line)


def _stewards(grant: Grant) -> list[User]:
    return member_users(grant_society(grant), SocietyMembership.Role.STEWARD)


def _applicants(grant: Grant) -> list[User]:
    users = list(grant.users.filter(is_active=True).order_by("pk"))
    request = grant.access_request
    if request is not None:
        users += [request.applicant, request.principal_investigator]
    return users


def _heads(grant: Grant) -> list[User]:
    request = grant.access_request
    if request is None:
        return []
    return list(User.objects.filter(
        is_active=True, org_memberships__organization_id=request.organization_id,
        org_memberships__role=OrganizationMembership.Role.HEAD,
    ).distinct().order_by("pk"))


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
        every, restrict, head_days = reminder_every_days(), restrict_after_days(), institution_after_days()
        owed = days // every
        if days >= every and report.reminders_sent < owed:
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
                             % {"days": days, "restrict": restrict, "head": head_days}),
                _applicants(grant), _report_url(report),
            )
            steps.append("reminded")
        if days >= restrict:
            grant = Grant.objects.select_for_update().get(pk=grant.pk)
            if not grant.restricted and grant.status != Grant.Status.ENDED:
                grant.restricted = True
                grant.save(update_fields=["restricted"])
                audit_record(action="access.grant_restricted", actor=None, target=grant,
                             details={"report": report.pk, "days_overdue": days})
                _mail(
                    _("Access restricted for an overdue usage report: %(grant)s") % {"grant": grant.reference},
                    _report_body(report, _("No new download links are issued until the report is submitted.")),
                    _stewards(grant) + _applicants(grant), _report_url(report),
                )
                steps.append("restricted")
        if days >= head_days and report.institution_notified_at is None:
            heads = _heads(grant)
            report.institution_notified_at = timezone.now()
            report.save(update_fields=["institution_notified_at"])
            audit_record(action="access.usage_report_institution_notified", actor=None, target=report,
                         details={"grant": grant.reference, "days_overdue": days,
                                  "heads": sorted(head.email for head in heads)})
            body = _report_body(
                report,
                _("A usage report owed by your institution under this data-access grant is %(days)s days overdue. "
                  "Please see that it is submitted.") % {"days": days},
            )
            subject = _("Overdue usage report at your institution: %(grant)s") % {"grant": grant.reference}
            # No head on record: the society's stewards are told instead, to reach the institution.
            _mail(subject, body, heads or _stewards(grant), _report_url(report))
            steps.append("institution_notified")
    return steps


def usage_reports_enforce(*, today: date | None = None) -> dict[str, int]:
    """The daily enforcement run; each step is remembered, so a second run does nothing new."""
    today = today or timezone.localdate()
    counts = {"reminded": 0, "restricted": 0, "institution_notified": 0}
    overdue = UsageReport.objects.filter(
        status=UsageReport.Status.DUE, due_on__lte=today - timedelta(days=reminder_every_days()),
        grant__status__in=_ENFORCED,
    ).order_by("due_on", "pk").values_list("pk", flat=True)
    for report_id in list(overdue):
        for step in _enforce_one(report_id, today):
            counts[step] += 1
    return counts
