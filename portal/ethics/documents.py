"""Issuing the committee's and the head's notices as PDFs (審査結果通知書, 許可・不許可通知書).

A notice is rendered once, stored through the default storage with the SHA-256 of its bytes, and
never re-rendered: issuing again returns the stored notice, so what was downloaded yesterday is
byte for byte what is downloaded today. The documents are official Japanese documents, so they
are rendered in Japanese whatever the reader's language; their labels (review type and mode,
opinion, ...) are the models' choice labels, whose Japanese is in the catalogue.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.ethics.models import (
    Decision,
    EthicsNotice,
    HeadDecision,
    Protocol,
    ProtocolVersion,
)
from portal.lib.pdf import render_pdf


def japanese_date(value: date | datetime | None) -> str:
    """2026年11月28日, in Japan time for moments."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    return f"{value.year}年{value.month}月{value.day}日"


def _name(user: User | None) -> str:
    return (user.full_name or user.email) if user is not None else ""


def _title(version: ProtocolVersion) -> str:
    return version.items.filter(key="title").values_list("body", flat=True).first() or ""


def _common_context(version: ProtocolVersion) -> dict[str, Any]:
    protocol = version.protocol
    return {
        "protocol": protocol,
        "version": version,
        "version_kind": version.get_kind_display(),
        "committee": protocol.committee,
        "title": _title(version),
        "pi_name": _name(protocol.principal_investigator),
        # Item ② as rows (institution × person × role); the lead PI heads a multi-site study.
        "organization_entries": list(version.organization_entries.all()),
        "lead_pi_name": next(
            (e.person_name for e in version.organization_entries.all() if e.person_role == "lead_pi"), ""
        ),
        "institution_name": protocol.institution.name_ja,
        "submitted_on": japanese_date(version.submitted_at),
        "issued_on": japanese_date(timezone.localdate()),
    }


def _issue(
    *, kind: str, version: ProtocolVersion, template: str, context: dict[str, Any], by: User | None
) -> EthicsNotice:
    """Render, store and audit a notice once; later calls return the stored one."""
    existing = EthicsNotice.objects.filter(version=version, kind=kind).first()
    if existing is not None:
        return existing
    with translation.override("ja"):
        pdf = render_pdf(template, context)
    digest = hashlib.sha256(pdf).hexdigest()
    protocol = version.protocol
    notice = EthicsNotice(kind=kind, protocol=protocol, version=version, sha256=digest, issued_by=by)
    notice.file.save(f"{protocol.number or protocol.pk}-v{version.number}-{kind}.pdf", ContentFile(pdf), save=False)
    try:
        with transaction.atomic():
            # Serialise issuers on the protocol row, then look again: two first downloads at the
            # same moment must not store two different PDFs for one decision.
            Protocol.objects.select_for_update().filter(pk=protocol.pk).first()
            existing = EthicsNotice.objects.filter(version=version, kind=kind).first()
            if existing is not None:
                notice.file.delete(save=False)
                return existing
            notice.save()
            audit_record(
                action="ethics.notice_issued", actor=by, target=notice,
                details={"protocol": protocol.number, "version": version.number, "kind": kind,
                         "sha256": digest},
            )
    except IntegrityError:
        notice.file.delete(save=False)
        return EthicsNotice.objects.get(version=version, kind=kind)
    except Exception:
        notice.file.delete(save=False)
        raise
    return notice


def decision_notice_issue(*, decision: Decision, by: User | None) -> EthicsNotice:
    """The committee's 審査結果通知書 for one decision (idempotent)."""
    review = decision.review
    version = review.version
    with translation.override("ja"):  # the labels below are the catalogue's Japanese
        context = _common_context(version) | {
            "decision": decision,
            "review_type": review.get_type_display(),
            "review_mode": review.get_mode_display(),
            "expedited_ground": review.get_expedited_ground_display(),
            "meeting_on": japanese_date(review.meeting_at),
            "opinion": decision.get_outcome_display(),
            "method": decision.get_method_display(),
            "decided_on": japanese_date(decision.decided_at),
            "approved_until": japanese_date(decision.approved_until),
            "chair_name": _name(decision.decided_by),
        }
    notice = _issue(kind=EthicsNotice.Kind.DECISION, version=version,
                    template="ethics_decision_notice.html", context=context, by=by)
    if decision.notified_to_head_on is None:
        # The issued notice is the opinion reaching the head (意見通知日), unless the secretariat
        # recorded another day; compare-and-swap so a recorded day is never overwritten.
        day = timezone.localdate(notice.issued_at)
        if Decision.objects.filter(pk=decision.pk, notified_to_head_on__isnull=True).update(notified_to_head_on=day):
            decision.notified_to_head_on = day
    return notice


def permission_notice_issue(*, head_decision: HeadDecision, by: User | None) -> EthicsNotice:
    """The head's 許可通知書 or 不許可通知書 for one version (idempotent)."""
    version = head_decision.version
    decision = getattr(getattr(version, "review", None), "decision", None)
    approved_until = version.protocol.approved_until if head_decision.permitted else None
    if head_decision.permitted and decision is not None and decision.approved_until:
        approved_until = decision.approved_until
    with translation.override("ja"):  # the labels below are the catalogue's Japanese
        context = _common_context(version) | {
            "head_decision": head_decision,
            "heading": _("Notice of permission") if head_decision.permitted else _("Notice of non-permission"),
            "head_name": _name(head_decision.decided_by),
            "head_decided_on": japanese_date(head_decision.decided_at),
            "opinion": decision.get_outcome_display() if decision is not None else "",
            "decided_on": japanese_date(decision.decided_at) if decision is not None else "",
            "approved_until": japanese_date(approved_until),
        }
    return _issue(kind=EthicsNotice.Kind.PERMISSION, version=version,
                  template="ethics_permission_notice.html", context=context, by=by)


def notice_issue_for(*, version: ProtocolVersion, kind: str, by: User | None) -> EthicsNotice | None:
    """The notice of ``kind`` for a version, issued now if the decision exists but no notice yet."""
    existing = EthicsNotice.objects.filter(version=version, kind=kind).first()
    if existing is not None:
        return existing
    if kind == EthicsNotice.Kind.DECISION:
        decision = Decision.objects.filter(review__version=version).select_related(
            "review__version__protocol__committee", "decided_by").first()
        return decision_notice_issue(decision=decision, by=by) if decision is not None else None
    if kind == EthicsNotice.Kind.PERMISSION:
        head_decision = HeadDecision.objects.filter(version=version).select_related("decided_by").first()
        return permission_notice_issue(head_decision=head_decision, by=by) if head_decision is not None else None
    return None
