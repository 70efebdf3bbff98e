"""Issuing the committee's and the head's notices as PDFs (審査結果通知書, 許可・不許可通知書).

A notice is rendered once, stored through the default storage with the SHA-256 of its bytes, and
never re-rendered: issuing again returns the stored notice, so what was downloaded yesterday is
byte for byte what is downloaded today. The documents are official Japanese documents, so their
fixed text is Japanese whatever the reader's language.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.ethics.models import (
    Decision,
    EthicsNotice,
    HeadDecision,
    Protocol,
    ProtocolVersion,
    Review,
)
from portal.lib.pdf import render_pdf

# The notices' own vocabulary (REGULATION.md (d)); fixed, because the documents are Japanese.
REVIEW_TYPES_JA = {
    Review.Type.NEW: "新規申請",
    Review.Type.AMENDMENT: "変更申請",
    Review.Type.CONTINUING: "継続審査（定期報告）",
    Review.Type.COMPLETION: "終了報告",
}
REVIEW_MODES_JA = {
    Review.Mode.FULL_BOARD: "本審査（委員会審議）",
    Review.Mode.EXPEDITED: "迅速審査",
    Review.Mode.CENTRAL: "一括審査",
    Review.Mode.NOTIFICATION: "報告事項",
}
EXPEDITED_GROUNDS_JA = {
    Review.ExpeditedGround.REVIEWED_ELSEWHERE: "他の倫理審査委員会で審査済みの多機関共同研究",
    Review.ExpeditedGround.MINOR_CHANGE: "研究計画書の軽微な変更",
    Review.ExpeditedGround.NO_INVASION_NO_INTERVENTION: "侵襲を伴わない研究であって介入を行わないもの",
    Review.ExpeditedGround.MINIMAL_NO_INTERVENTION: "軽微な侵襲を伴う研究であって介入を行わないもの",
}
OUTCOMES_JA = {
    Decision.Outcome.APPROVED: "承認",
    Decision.Outcome.CONDITIONS: "条件付き承認",
    Decision.Outcome.DEFERRED: "継続審査",
    Decision.Outcome.NOT_APPROVED: "不承認",
    Decision.Outcome.NOT_SUBJECT: "非該当",
}
METHODS_JA = {Decision.Method.UNANIMOUS: "全会一致", Decision.Method.MAJORITY: "多数決"}
VERSION_KINDS_JA = {
    ProtocolVersion.Kind.INITIAL: "新規申請",
    ProtocolVersion.Kind.MINOR_AMENDMENT: "軽微な変更",
    ProtocolVersion.Kind.MAJOR_AMENDMENT: "変更",
}


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
        "version_kind": VERSION_KINDS_JA[ProtocolVersion.Kind(version.kind)],
        "committee": protocol.committee,
        "title": _title(version),
        "pi_name": _name(protocol.principal_investigator),
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
    context = _common_context(version) | {
        "decision": decision,
        "review_type": REVIEW_TYPES_JA[Review.Type(review.type)],
        "review_mode": REVIEW_MODES_JA[Review.Mode(review.mode)],
        "expedited_ground": EXPEDITED_GROUNDS_JA.get(review.expedited_ground, ""),  # type: ignore[call-overload]
        "meeting_on": japanese_date(review.meeting_at),
        "opinion": OUTCOMES_JA[Decision.Outcome(decision.outcome)],
        "method": METHODS_JA[Decision.Method(decision.method)],
        "decided_on": japanese_date(decision.decided_at),
        "approved_until": japanese_date(decision.approved_until),
        "chair_name": _name(decision.decided_by),
    }
    return _issue(kind=EthicsNotice.Kind.DECISION, version=version,
                  template="ethics_decision_notice.html", context=context, by=by)


def permission_notice_issue(*, head_decision: HeadDecision, by: User | None) -> EthicsNotice:
    """The head's 許可通知書 or 不許可通知書 for one version (idempotent)."""
    version = head_decision.version
    decision = getattr(getattr(version, "review", None), "decision", None)
    approved_until = version.protocol.approved_until if head_decision.permitted else None
    if head_decision.permitted and decision is not None and decision.approved_until:
        approved_until = decision.approved_until
    context = _common_context(version) | {
        "head_decision": head_decision,
        "heading": "許可通知書" if head_decision.permitted else "不許可通知書",
        "head_name": _name(head_decision.decided_by),
        "head_decided_on": japanese_date(head_decision.decided_at),
        "opinion": OUTCOMES_JA[Decision.Outcome(decision.outcome)] if decision is not None else "",
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
