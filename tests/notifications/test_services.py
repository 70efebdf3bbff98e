"""notification_send and the mail task: inbox rows in the caller's transaction, one e-mail each, never twice."""

from __future__ import annotations

import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from portal.notifications.models import Notification
from portal.notifications.services import (
    MAX_ATTEMPTS,
    notification_mail_deliver,
    notification_send,
    notifications_mail_due,
    notifications_mail_redeliver,
)
from portal.notifications.tasks import (
    redeliver_notification_mail_task,
    retry_delay,
    send_notification_mail_task,
)
from tests.factories import UserFactory

# The domain of the portal's sender address names the notifications' Message-IDs.
DOMAIN = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">")
S = Notification.MailStatus


def _send(capture, recipients, **kwargs):  # type: ignore[no-untyped-def]
    fields = {"area": "Data access", "subject": "A decision was made", "body": "DAR-1 title",
              "url": "/access/requests/1/"} | kwargs
    with capture(execute=True):
        return notification_send(recipients=recipients, **fields)


def _row(recipient, **fields):  # type: ignore[no-untyped-def]
    return Notification.objects.create(recipient=recipient, area="Data access", subject="s", body="b", **fields)


def test_send_writes_one_row_per_distinct_active_person_and_mails_each_after_commit(
    db, django_capture_on_commit_callbacks
):
    alice, bob = UserFactory(email="alice@example.jp"), UserFactory(email="bob@example.jp")
    gone = UserFactory(email="gone@example.jp", is_active=False)

    rows = _send(django_capture_on_commit_callbacks, [alice, bob, alice, None, gone])

    assert [(row.recipient, row.mail_status) for row in Notification.objects.order_by("pk")] == [
        (alice, "sent"), (bob, "sent")]
    assert [row.pk for row in rows] == list(Notification.objects.order_by("pk").values_list("pk", flat=True))
    assert sorted(message.to for message in mail.outbox) == [["alice@example.jp"], ["bob@example.jp"]]
    message = mail.outbox[0]
    assert message.subject == "[Data access] A decision was made"
    assert message.body == f"DAR-1 title\n\n{settings.PORTAL_BASE_URL}/access/requests/1/"
    assert message.extra_headers["Message-ID"] == f"<notification-{rows[0].pk}@{DOMAIN}>"
    sent = Notification.objects.get(recipient=alice)
    assert (sent.mail_attempts, sent.mail_to, sent.mail_last_error) == (1, "alice@example.jp", "")
    assert sent.mail_sent_at is not None and sent.read_at is None


def test_send_in_a_transaction_that_rolls_back_tells_nobody(db, django_capture_on_commit_callbacks):
    alice = UserFactory(email="alice@example.jp")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), \
            transaction.atomic():
        notification_send(recipients=[alice], area="Data access", subject="s", body="b")
        raise RuntimeError("the change failed")

    assert Notification.objects.count() == 0
    assert callbacks == []
    assert mail.outbox == []


def test_send_queues_one_task_per_message_on_commit(db, django_capture_on_commit_callbacks):
    people = [UserFactory() for _ in range(3)]

    with mock.patch.object(send_notification_mail_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            rows = notification_send(recipients=people, area="Data access", subject="s")
        assert delay.call_count == 0  # nothing before the commit
        for callback in callbacks:
            callback()

    assert sorted(call.args for call in delay.call_args_list) == sorted((row.pk,) for row in rows)


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:x"])
def test_send_refuses_a_link_outside_the_portal_and_writes_nothing(db, url):
    with pytest.raises(ValueError, match="path inside the portal"):
        notification_send(recipients=[UserFactory()], area="Data access", subject="s", url=url)

    assert Notification.objects.count() == 0


def test_send_folds_a_newline_in_the_subject(db, django_capture_on_commit_callbacks):
    _send(django_capture_on_commit_callbacks, [UserFactory()], subject="first\nBcc: someone@evil.example")

    assert Notification.objects.get().subject == "first Bcc: someone@evil.example"
    assert mail.outbox[0].subject == "[Data access] first Bcc: someone@evil.example"


def test_person_without_an_address_gets_the_inbox_message_only(db, django_capture_on_commit_callbacks):
    person = UserFactory(email="")

    _send(django_capture_on_commit_callbacks, [person])

    assert Notification.objects.get().mail_status == "no_address"
    assert mail.outbox == []


def test_deliver_twice_sends_once(db):
    row = _row(UserFactory(email="alice@example.jp"))

    assert notification_mail_deliver(notification_id=row.pk) == "sent"
    assert notification_mail_deliver(notification_id=row.pk) == "skipped"

    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert (row.mail_status, row.mail_attempts) == ("sent", 1)


def test_deliver_of_a_message_another_worker_is_sending_sends_nothing(db):
    row = _row(UserFactory(), mail_status=S.SENDING, mail_claimed_at=timezone.now())

    assert notification_mail_deliver(notification_id=row.pk) == "skipped"

    assert mail.outbox == []
    row.refresh_from_db()
    assert (row.mail_status, row.mail_attempts) == ("sending", 0)


def test_deliver_with_the_mail_server_down_records_failed_not_sent(db):
    row = _row(UserFactory(email="alice@example.jp"))

    with mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("gone")), \
            pytest.raises(smtplib.SMTPServerDisconnected):
        notification_mail_deliver(notification_id=row.pk)

    row.refresh_from_db()
    assert (row.mail_status, row.mail_sent_at, row.mail_attempts) == ("failed", None, 1)
    assert row.mail_last_error == "SMTPServerDisconnected: gone"
    assert mail.outbox == []


def test_task_retries_with_backoff_when_run_by_a_worker(db):
    row = _row(UserFactory())

    with mock.patch("django.core.mail.EmailMessage.send", side_effect=ConnectionRefusedError(111, "refused")), \
            mock.patch.object(send_notification_mail_task, "retry", side_effect=Retry()) as retry, \
            pytest.raises(Retry):
        send_notification_mail_task.run(row.pk)  # as a worker runs it: not eager

    assert retry.call_args.kwargs["countdown"] == 60
    assert isinstance(retry.call_args.kwargs["exc"], ConnectionRefusedError)
    row.refresh_from_db()
    assert row.mail_status == "failed"


def test_task_in_process_leaves_the_message_failed_without_raising(db):
    row = _row(UserFactory())

    with mock.patch("django.core.mail.EmailMessage.send", side_effect=ConnectionRefusedError(111, "refused")):
        assert send_notification_mail_task.delay(row.pk).get() == "failed"

    row.refresh_from_db()
    assert row.mail_status == "failed"


def test_retry_delay_doubles_up_to_an_hour():
    assert [retry_delay(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_task_is_named_limited_and_acknowledged_late():
    task = send_notification_mail_task
    assert (task.name, task.acks_late, task.time_limit, task.soft_time_limit, task.max_retries) == (
        "notifications.send_mail", True, 120, 90, 5)
    assert redeliver_notification_mail_task.name == "notifications.redeliver_mail"
    assert settings.CELERY_BEAT_SCHEDULE["notifications-redeliver-mail"] == {
        "task": "notifications.redeliver_mail", "schedule": 600}


def test_a_broker_that_is_down_never_breaks_the_saved_change(db, django_capture_on_commit_callbacks):
    alice = UserFactory()

    with mock.patch.object(send_notification_mail_task, "delay", side_effect=OperationalError("no broker")):
        rows = _send(django_capture_on_commit_callbacks, [alice])

    row = Notification.objects.get(pk=rows[0].pk)
    assert (row.mail_status, row.mail_attempts) == ("pending", 0)


def test_redelivery_picks_only_messages_whose_mail_is_overdue(db):
    person = UserFactory()
    now = timezone.now()
    old, recent = now - timedelta(minutes=11), now - timedelta(minutes=9)
    due = [
        _row(person, created_at=old),
        _row(person, mail_status=S.FAILED, mail_claimed_at=old, mail_attempts=2),
        _row(person, mail_status=S.SENDING, mail_claimed_at=now - timedelta(minutes=16), mail_attempts=1),
    ]
    _row(person, created_at=recent)
    _row(person, mail_status=S.FAILED, mail_claimed_at=recent, mail_attempts=1)
    _row(person, mail_status=S.SENDING, mail_claimed_at=now - timedelta(minutes=14), mail_attempts=1)
    _row(person, mail_status=S.FAILED, mail_claimed_at=old, mail_attempts=MAX_ATTEMPTS)
    _row(person, mail_status=S.SENT, mail_sent_at=old, created_at=old)
    _row(person, mail_status=S.NO_ADDRESS, created_at=old)

    assert notifications_mail_due(now=now) == [row.pk for row in due]


def test_redelivery_sends_a_failed_message_once(db):
    row = _row(UserFactory(email="alice@example.jp"), mail_status=S.FAILED,
               mail_claimed_at=timezone.now() - timedelta(hours=1), mail_attempts=6)

    assert notifications_mail_redeliver() == 1
    assert notifications_mail_redeliver() == 0

    assert [message.to for message in mail.outbox] == [["alice@example.jp"]]
    row.refresh_from_db()
    assert (row.mail_status, row.mail_attempts) == ("sent", 7)


def test_sent_without_a_time_is_refused_by_the_database(db):
    with pytest.raises(IntegrityError):
        _row(UserFactory(), mail_status=S.SENT)


def test_send_refuses_an_address_instead_of_a_person_and_writes_nothing(db):
    with pytest.raises(TypeError, match="must be users"):
        notification_send(recipients=[UserFactory(), "someone@example.jp"], area="Data access", subject="s")

    assert Notification.objects.count() == 0
