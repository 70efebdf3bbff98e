"""Thin Celery tasks of the notifications: one e-mail per task, and the redelivery of the rest (beat)."""

from __future__ import annotations

import smtplib
from typing import Any

from celery import shared_task

from portal.notifications.services import notification_mail_deliver, notifications_mail_redeliver

# Errors of the mail server or the network: worth trying again later.
RETRYABLE = (smtplib.SMTPException, OSError)
MAX_RETRIES = 5


def retry_delay(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 1, 2, 4, 8, 16 minutes (at most an hour)."""
    return int(min(60 * 2**retries, 3600))


@shared_task(
    bind=True, name="notifications.send_mail", acks_late=True, time_limit=120, soft_time_limit=90,
    max_retries=MAX_RETRIES,
)
def send_notification_mail_task(self: Any, notification_id: int) -> str:
    """Send one notification's e-mail; idempotent (a message sent or being sent is skipped)."""
    try:
        return notification_mail_deliver(notification_id=notification_id)
    except RETRYABLE as error:
        if self.request.is_eager:
            # Run in-process (tests, a machine without a broker): nobody would wait for a retry.
            # The message stays failed and the redelivery task sends it later.
            return "failed"
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error


@shared_task(name="notifications.redeliver_mail", time_limit=600, soft_time_limit=540)
def redeliver_notification_mail_task() -> int:
    """Queue again the e-mails still pending or failed after their retries; returns how many."""
    return notifications_mail_redeliver()
