"""Thin Celery tasks: each takes ids and calls one idempotent service."""

from __future__ import annotations

from celery import shared_task

from portal.accounts.models import User
from portal.ethics.documents import decision_notice_issue, permission_notice_issue
from portal.ethics.models import Decision, HeadDecision
from portal.ethics.reminders import reminders_send


@shared_task(name="ethics.send_reminders", time_limit=600, soft_time_limit=540)
def send_reminders_task() -> int:
    """The daily reminder run (beat); idempotent, so a retry or a second run sends nothing new."""
    return len(reminders_send())


@shared_task(name="ethics.issue_decision_notice", time_limit=120, soft_time_limit=100)
def issue_decision_notice_task(decision_id: int, by_id: int | None) -> int:
    """Issue the 審査結果通知書 for a decision; returns the notice id (the stored one on a rerun)."""
    decision = Decision.objects.select_related(
        "review__version__protocol__committee", "review__version__protocol__institution", "decided_by"
    ).get(pk=decision_id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    return decision_notice_issue(decision=decision, by=by).pk


@shared_task(name="ethics.issue_permission_notice", time_limit=120, soft_time_limit=100)
def issue_permission_notice_task(head_decision_id: int, by_id: int | None) -> int:
    """Issue the 許可通知書 or 不許可通知書 for a head's decision; idempotent like the service."""
    head_decision = HeadDecision.objects.select_related("version__protocol", "decided_by").get(pk=head_decision_id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    return permission_notice_issue(head_decision=head_decision, by=by).pk
