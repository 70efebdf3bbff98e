"""Every message the portal sends a person: written to their inbox, e-mailed as a copy by a task.

``notification_send`` is the one way to tell people something. It writes one ``Notification`` per
person inside the caller's transaction (so nothing is told about a change that rolls back) and
queues one mail task per message when that transaction commits. The task calls
``notification_mail_deliver``, which claims the message by compare-and-swap, sends it and records it
as sent only once the mail server has accepted it. A mail server that is down never undoes or fails
the change that caused the message: the message stays ``failed`` and is sent again by the task's
retries and, after them, by ``notifications_mail_redeliver`` (beat).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from portal.accounts.models import User
from portal.notifications.models import Notification

logger = logging.getLogger(__name__)

MailStatus = Notification.MailStatus

# A pending message older than this has lost its task message (broker down, worker died): queue it again.
PENDING_GRACE = timedelta(minutes=10)
# A failed message is tried again this long after its last attempt (the task's own retries come first).
FAILED_WAIT = timedelta(minutes=10)
# A message still "sending" this long after its claim belongs to a worker that died: longer than the
# task's hard time limit, so the first attempt can no longer be running.
SENDING_LEASE = timedelta(minutes=15)
# After this many attempts a message is left failed for a person to look at (a refused address).
MAX_ATTEMPTS = 20
REDELIVER_BATCH = 500
SUBJECT_LENGTH = Notification._meta.get_field("subject").max_length or 300


def _one_line(text: Any, limit: int) -> str:
    # A newline in a subject would be a header injection; Django refuses it, so fold it here.
    return " ".join(str(text).split())[:limit]


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if url and (not url.startswith("/") or url.startswith(("//", "/\\"))
                or not url_has_allowed_host_and_scheme(url, allowed_hosts=None)):
        raise ValueError(f"notification url must be a path inside the portal, got {url!r}")
    return url


def notification_send(
    *, recipients: Iterable[User | None], area: Any, subject: Any, body: Any = "", url: str = ""
) -> list[Notification]:
    """Tell each distinct active person in ``recipients``: an inbox message now, an e-mail after commit.

    ``area`` names the part of the portal ("Data access"), ``subject`` the news; both, and ``body``,
    are rendered in the active language now. ``url`` is a path inside the portal ("/ethics/…/").
    Call it inside the transaction of the change the message is about.
    """
    path = _check_url(url)
    people: dict[int, User] = {}
    for user in recipients:
        if user is None:
            continue
        if not isinstance(user, User):  # e.g. an e-mail address: the inbox needs a person
            raise TypeError(f"notification recipients must be users, got {user!r}")
        if user.pk is not None and user.is_active and user.pk not in people:
            people[user.pk] = user
    if not people:
        return []
    now = timezone.now()
    rows = Notification.objects.bulk_create([
        Notification(
            recipient=user, area=_one_line(area, 100), subject=_one_line(subject, SUBJECT_LENGTH),
            body=str(body or "").strip(), url=path, created_at=now,
            mail_status=MailStatus.PENDING if user.email else MailStatus.NO_ADDRESS,
        )
        for user in people.values()
    ])
    for row in rows:
        if row.mail_status == MailStatus.PENDING:
            transaction.on_commit(partial(_queue_mail, row.pk))
    return rows


def _queue_mail(notification_id: int) -> None:
    """Hand one message to the mail task. Never raises: the change is saved; beat sends it later."""
    from portal.notifications.tasks import send_notification_mail_task

    try:
        send_notification_mail_task.delay(notification_id)
    except Exception:  # a broker that is down, or an error of a task run in-process
        logger.exception("notification %s: mail not queued; the redelivery task will send it", notification_id)


# --- The e-mail copy ------------------------------------------------------------------------------


def portal_link(path: str) -> str:
    """The absolute address of a path inside the portal (for e-mail and the API)."""
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}" if path else ""


def _email(notification: Notification, address: str) -> EmailMessage:
    link = portal_link(notification.url)
    body = notification.body
    if link and link not in body:
        body = "\n\n".join(part for part in (body, link) if part)
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost"
    return EmailMessage(
        subject=f"[{notification.area}] {notification.subject}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        # The same id on every attempt: a mail system that received a copy twice can tell.
        headers={"Message-ID": f"<notification-{notification.pk}@{domain}>"},
    )


def _claim(notification_id: int, now: datetime) -> bool:
    """Compare-and-swap to ``sending``: of two workers given the same message, one wins."""
    claimable = Q(mail_status__in=[MailStatus.PENDING, MailStatus.FAILED]) | Q(
        mail_status=MailStatus.SENDING, mail_claimed_at__lt=now - SENDING_LEASE
    )
    return Notification.objects.filter(claimable, pk=notification_id).update(
        mail_status=MailStatus.SENDING, mail_claimed_at=now, mail_attempts=F("mail_attempts") + 1
    ) == 1


def _finish(notification_id: int, **fields: Any) -> None:
    Notification.objects.filter(pk=notification_id, mail_status=MailStatus.SENDING).update(**fields)


def notification_mail_deliver(*, notification_id: int) -> str:
    """Send one message's e-mail unless it was sent or is being sent; returns the resulting state.

    Errors of the mail server are recorded on the message (``failed``) and raised again, so that
    the task can retry.
    """
    if not _claim(notification_id, timezone.now()):
        return "skipped"
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    address = notification.recipient.email
    if not address:
        _finish(notification_id, mail_status=MailStatus.NO_ADDRESS, mail_claimed_at=None)
        return MailStatus.NO_ADDRESS
    try:
        accepted = _email(notification, address).send(fail_silently=False)
    except Exception as error:
        _finish(notification_id, mail_status=MailStatus.FAILED,
                mail_last_error=f"{type(error).__name__}: {error}"[:2000])
        raise
    if accepted != 1:
        _finish(notification_id, mail_status=MailStatus.FAILED,
                mail_last_error="The mail backend did not accept the message.")
        return MailStatus.FAILED
    _finish(notification_id, mail_status=MailStatus.SENT, mail_sent_at=timezone.now(), mail_to=address,
            mail_last_error="")
    return MailStatus.SENT


def notifications_mail_due(*, now: datetime | None = None) -> list[int]:
    """Messages whose e-mail should have gone out by now and did not (oldest first)."""
    now = now or timezone.now()
    due = (
        Q(mail_status=MailStatus.PENDING, created_at__lt=now - PENDING_GRACE)
        | Q(mail_status=MailStatus.FAILED, mail_claimed_at__lt=now - FAILED_WAIT)
        | Q(mail_status=MailStatus.SENDING, mail_claimed_at__lt=now - SENDING_LEASE)
    )
    return list(
        Notification.objects.filter(due, mail_attempts__lt=MAX_ATTEMPTS)
        .order_by("created_at", "id").values_list("pk", flat=True)[:REDELIVER_BATCH]
    )


def notifications_mail_redeliver(*, now: datetime | None = None) -> int:
    """Queue the mail task again for every message due (beat); returns how many were queued."""
    ids = notifications_mail_due(now=now)
    for notification_id in ids:
        _queue_mail(notification_id)
    return len(ids)


# --- The inbox ------------------------------------------------------------------------------------
# Reading is the person's own bookkeeping, not a decision of the portal: no audit event.


def notification_mark_read(*, notification: Notification, by: User) -> Notification:
    """Mark one of ``by``'s own messages read (a message already read keeps its first reading time)."""
    if notification.recipient_id != by.pk:
        raise PermissionDenied("Only the recipient can mark a notification read.")
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=timezone.now())
    notification.refresh_from_db(fields=["read_at"])
    return notification


def notification_mark_all_read(*, by: User) -> int:
    """Mark every unread message of ``by`` read; returns how many were unread."""
    return Notification.objects.filter(recipient=by, read_at__isnull=True).update(read_at=timezone.now())
