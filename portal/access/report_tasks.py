"""The daily beat task that enforces overdue usage reports (REGULATION.md a8)."""

from __future__ import annotations

from celery import shared_task

from portal.access.services.reports import usage_reports_enforce


@shared_task(name="access.enforce_usage_reports", time_limit=900, soft_time_limit=840)
def enforce_usage_reports_task() -> dict[str, int]:
    """Reminders, restriction and the institution told; idempotent, so a rerun sends nothing new."""
    return usage_reports_enforce()
