"""Thin Celery tasks of the grants: expiry, pause/resume and lapse warnings, all idempotent (beat)."""

from __future__ import annotations

from celery import shared_task

from portal.access.services.grants import grant_expire_due, grant_refresh_all
from portal.access.services.warnings import lapse_warnings_send


@shared_task(name="access.expire_grants", time_limit=600, soft_time_limit=540)
def expire_grants_task() -> int:
    """Expire the grants whose period is over; a rerun expires nothing new."""
    return grant_expire_due()


@shared_task(name="access.refresh_grants", time_limit=1200, soft_time_limit=1140)
def refresh_grants_task() -> int:
    """Pause grants whose protocol, notice, agreement or self-assessment lapsed; resume the rest."""
    return grant_refresh_all()


@shared_task(name="access.send_lapse_warnings", time_limit=900, soft_time_limit=840)
def send_lapse_warnings_task() -> int:
    """Warn 90/60/30 days before a grant or what it rests on lapses; a rerun sends nothing new."""
    return len(lapse_warnings_send())
