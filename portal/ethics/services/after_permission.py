"""After permission: revisions, amendments, periodic and non-compliance reports, suspension and
the end of the research.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ethics import notifications
from portal.ethics.models import (
    NoncomplianceReport,
    OrganizationEntry,
    PeriodicReport,
    Protocol,
    ProtocolAttachment,
    ProtocolItem,
    ProtocolStatus,
    ProtocolVersion,
)
from portal.ethics.services.common import (
    _audit,
    _locked,
    _require_applicant,
    _require_chair,
    _require_head,
    _require_secretariat,
    latest_version,
    one_year_after,
)
from portal.ethics.services.drafting import missing_for_submission, protocol_submit
from portal.ethics.workflow import EthicsRefused, transition


def _copy_version(previous: ProtocolVersion, *, kind: str, summary: str) -> ProtocolVersion:
    """A new draft version with the previous one's fields, items and attachments."""
    protocol = previous.protocol
    number = (protocol.versions.aggregate(Max("number"))["number__max"] or 0) + 1
    version = ProtocolVersion.objects.get(pk=previous.pk)
    societies = list(previous.societies.all())
    researchers = list(previous.named_researchers.all())
    version.pk = None
    version.id = None
    version._state.adding = True
    version.number = number
    version.kind = kind
    version.change_summary = summary.strip()
    version.submitted_at = None
    version.save()
    version.societies.set(societies)
    version.named_researchers.set(researchers)
    OrganizationEntry.objects.bulk_create(
        OrganizationEntry(
            version=version, position=e.position, institution_name=e.institution_name,
            institution_role=e.institution_role, person_name=e.person_name, person_role=e.person_role,
            user_id=e.user_id,
        )
        for e in previous.organization_entries.all()
    )
    ProtocolItem.objects.bulk_create(
        ProtocolItem(version=version, key=i.key, body=i.body, not_applicable_reason=i.not_applicable_reason)
        for i in previous.items.all()
    )
    # Attachments carry over by reference: the stored files are never changed, only added.
    ProtocolAttachment.objects.bulk_create(
        ProtocolAttachment(
            version=version, kind=a.kind, file=a.file.name, original_name=a.original_name,
            media_type=a.media_type, size=a.size, sha256=a.sha256, uploaded_by=a.uploaded_by,
        )
        for a in previous.attachments.all()
    )
    return version


def protocol_revise_refusal(*, protocol: Protocol, by: User) -> str | None:
    """Why ``by`` may not open a revision of ``protocol`` now, or None if they may.

    The one rule: ``protocol_revise`` refuses with it, and the page offers the revision only when
    it answers None.
    """
    if protocol.principal_investigator_id != by.pk:
        return str(_("Only the protocol's principal investigator can do this."))
    if protocol.status != ProtocolStatus.DEFERRED:
        return str(_("Only a deferred protocol is revised for resubmission."))
    if not latest_version(protocol).is_frozen:
        return str(_("A revision is already being drafted."))
    return None


def protocol_revise(*, protocol: Protocol, summary: str, by: User) -> ProtocolVersion:
    """After a deferral (継続審査), open a revised version to resubmit."""
    _require_applicant(protocol, by)
    if not summary.strip():
        raise ValidationError({"summary": _("Summarise the changes.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        refusal = protocol_revise_refusal(protocol=protocol, by=by)
        if refusal is not None:
            raise EthicsRefused(refusal)
        previous = latest_version(protocol)
        version = _copy_version(previous, kind=previous.kind, summary=summary)
        _audit("protocol_revised", by, protocol, version=version.number)
    return version


def amendment_start(*, protocol: Protocol, kind: str, summary: str, by: User) -> ProtocolVersion:
    """Open a new draft version copied from the current one; the protocol stays active meanwhile."""
    _require_applicant(protocol, by)
    if kind not in {ProtocolVersion.Kind.MINOR_AMENDMENT, ProtocolVersion.Kind.MAJOR_AMENDMENT}:
        raise ValidationError({"kind": _("Choose a minor or a major amendment.")})
    if not summary.strip():
        raise ValidationError({"summary": _("Summarise the changes.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status != ProtocolStatus.ACTIVE:
            raise EthicsRefused(_("Only an active protocol can be amended."))
        previous = latest_version(protocol)
        if not previous.is_frozen:
            raise EthicsRefused(_("An amendment is already being drafted."))
        version = _copy_version(previous, kind=kind, summary=summary)
        _audit("amendment_started", by, protocol, version=version.number, kind=kind)
    return version


def amendment_submit(*, protocol: Protocol, by: User) -> Protocol:
    _require_applicant(protocol, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        if version.kind == ProtocolVersion.Kind.INITIAL or version.is_frozen:
            raise EthicsRefused(_("There is no amendment draft to submit."))
        missing = missing_for_submission(version)
        if missing:
            raise ValidationError(missing)
        transition(protocol, "submit_amendment")
        version.submitted_at = timezone.now()
        version.save(update_fields=["submitted_at"])
        _audit("amendment_submitted", by, protocol, version=version.number, kind=version.kind)
        notifications.notify_secretariat(protocol, _("An amendment was submitted"))
    return protocol


def draft_submit(*, protocol: Protocol, by: User) -> Protocol:
    """Submit the open draft, whichever it is: pages and the API call this one.

    An amendment drafted while the research is active goes to amendment review; anything else (a
    first draft, one returned for completion, a revision after deferral, even of an amendment) is
    submitted anew.
    """
    submit = amendment_submit if protocol.status == ProtocolStatus.ACTIVE else protocol_submit
    return submit(protocol=protocol, by=by)


def minor_amendment_acknowledge(*, protocol: Protocol, by: User) -> Protocol:
    """A minor amendment handled as a notification (報告事項): the secretariat takes note."""
    _require_secretariat(protocol.committee, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        if version.kind != ProtocolVersion.Kind.MINOR_AMENDMENT:
            raise EthicsRefused(_("Only a minor amendment can be acknowledged as a notification."))
        transition(protocol, "acknowledge_minor_amendment")
        _audit("minor_amendment_acknowledged", by, protocol, version=version.number)
        notifications.notify_applicant(protocol, _("Your minor amendment was acknowledged"), "")
    return protocol


def periodic_report_submit(
    *, protocol: Protocol, period_end: date, subjects_enrolled: int, body: str, by: User
) -> PeriodicReport:
    """定期報告: the principal investigator reports once a year while the research runs."""
    _require_applicant(protocol, by)
    if not body.strip():
        raise ValidationError({"body": _("Describe the progress and any problems.")})
    if subjects_enrolled < 0:
        raise ValidationError({"subjects_enrolled": _("The number cannot be negative.")})
    if period_end > timezone.localdate():
        raise ValidationError({"period_end": _("The period cannot end in the future.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status not in {ProtocolStatus.ACTIVE, ProtocolStatus.AMENDMENT_REVIEW, ProtocolStatus.SUSPENDED}:
            raise EthicsRefused(_("Periodic reports are made while the research is running."))
        if protocol.periodic_reports.filter(period_end=period_end).exists():
            raise ValidationError({"period_end": _("A report for this period was already submitted.")})
        report = PeriodicReport.objects.create(
            protocol=protocol, period_end=period_end, subjects_enrolled=subjects_enrolled,
            body=body.strip(), submitted_by=by,
        )
        protocol.periodic_report_due = one_year_after(period_end)
        protocol.save(update_fields=["periodic_report_due"])
        _audit("periodic_report_submitted", by, protocol, period_end=period_end,
               subjects_enrolled=subjects_enrolled)
        notifications.notify_secretariat(protocol, _("A periodic report was submitted"))
    return report


def periodic_report_acknowledge(*, report: PeriodicReport, by: User) -> PeriodicReport:
    _require_secretariat(report.protocol.committee, by)
    with transaction.atomic():
        report = PeriodicReport.objects.select_for_update().get(pk=report.pk)
        if report.acknowledged_at is not None:
            raise EthicsRefused(_("This report was already acknowledged."))
        report.acknowledged_by = by
        report.acknowledged_at = timezone.now()
        report.save(update_fields=["acknowledged_by", "acknowledged_at"])
        _audit("periodic_report_acknowledged", by, report.protocol, period_end=report.period_end)
    return report


# While the research runs (or is suspended), serious non-compliance can be found and reported.
REPORTABLE_STATES = {ProtocolStatus.ACTIVE, ProtocolStatus.AMENDMENT_REVIEW, ProtocolStatus.SUSPENDED}


def noncompliance_report_file(*, protocol: Protocol, body: str, by: User) -> NoncomplianceReport:
    """重大な不適合の報告: the principal investigator or the head reports it to the committee."""
    if protocol.principal_investigator_id == by.pk:
        filed_as = NoncomplianceReport.FiledAs.PRINCIPAL_INVESTIGATOR
    else:
        _require_head(protocol, by)
        filed_as = NoncomplianceReport.FiledAs.HEAD
    if not body.strip():
        raise ValidationError({"body": _("Describe what happened and what was done about it.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status not in REPORTABLE_STATES:
            raise EthicsRefused(_("Serious non-compliance is reported while the research is running."))
        report = NoncomplianceReport.objects.create(
            protocol=protocol, filed_by=by, filed_as=filed_as, body=body.strip()
        )
        _audit("noncompliance_reported", by, protocol, report=report.pk, filed_as=filed_as)
        notifications.notify_secretariat(protocol, _("A report of serious non-compliance was filed"))
    return report


def noncompliance_opinion_record(*, report: NoncomplianceReport, opinion: str, by: User) -> NoncomplianceReport:
    """The committee's opinion on a report of serious non-compliance, recorded by the chair."""
    protocol = report.protocol
    _require_chair(protocol.committee, by)
    if not opinion.strip():
        raise ValidationError({"opinion": _("Give the committee's opinion.")})
    with transaction.atomic():
        report = NoncomplianceReport.objects.select_for_update().get(pk=report.pk)
        if report.opinion_at is not None:
            raise EthicsRefused(_("The committee has already given its opinion on this report."))
        report.opinion = opinion.strip()
        report.opinion_by = by
        report.opinion_at = timezone.now()
        report.save(update_fields=["opinion", "opinion_by", "opinion_at"])
        _audit("noncompliance_opinion_recorded", by, protocol, report=report.pk)
        notifications.notify_applicant(protocol, _("The committee gave its opinion on a report of serious non-compliance"),
                                       report.opinion)
    return report


def _simple_transition(action: str, audit_action: str, protocol: Protocol, by: User, **details: Any) -> Protocol:
    with transaction.atomic():
        protocol = _locked(protocol)
        source, target = transition(protocol, action)
        _audit(audit_action, by, protocol, **details, **{"from": source, "to": target})
    return protocol


def protocol_suspend(*, protocol: Protocol, reason: str, by: User) -> Protocol:
    try:
        _require_chair(protocol.committee, by)
    except EthicsRefused:
        _require_head(protocol, by)
    if not reason.strip():
        raise ValidationError({"reason": _("Give the reason for the suspension.")})
    protocol = _simple_transition("suspend", "protocol_suspended", protocol, by, reason=reason)
    notifications.notify_applicant(protocol, _("Your research was suspended"), reason)
    return protocol


def protocol_resume(*, protocol: Protocol, by: User) -> Protocol:
    try:
        _require_chair(protocol.committee, by)
    except EthicsRefused:
        _require_head(protocol, by)
    return _simple_transition("resume", "protocol_resumed", protocol, by)


def _end_with_report(
    action: str, audit_action: str, protocol: Protocol, report: str, by: User, subject: str
) -> Protocol:
    with transaction.atomic():
        protocol = _locked(protocol)
        source, target = transition(protocol, action, end_report=report.strip())
        _audit(audit_action, by, protocol, report=report.strip(), **{"from": source, "to": target})
        notifications.notify_secretariat(protocol, subject)
    return protocol


def protocol_report_completion(*, protocol: Protocol, report: str, by: User) -> Protocol:
    """終了報告: the research ends as completed (終了)."""
    _require_applicant(protocol, by)
    if not report.strip():
        raise ValidationError({"report": _("Write the completion report.")})
    return _end_with_report("report_completion", "completion_reported", protocol, report, by,
                            _("A completion report was submitted"))


def protocol_discontinue(*, protocol: Protocol, report: str, by: User) -> Protocol:
    """中止報告: the principal investigator stops the research before its planned end (中止)."""
    _require_applicant(protocol, by)
    if not report.strip():
        raise ValidationError({"report": _("Write the discontinuation report: why the research stopped and what was done.")})
    return _end_with_report("discontinue", "protocol_discontinued", protocol, report, by,
                            _("A discontinuation report was submitted"))


def protocol_withdraw(*, protocol: Protocol, by: User) -> Protocol:
    """取下げ: the applicant withdraws a protocol that has not been decided."""
    _require_applicant(protocol, by)
    return _simple_transition("withdraw", "protocol_withdrawn", protocol, by)
