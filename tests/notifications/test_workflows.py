"""Workflow actions that tell people now put the message in each one's inbox (and mail a copy)."""

from __future__ import annotations

import smtplib
from datetime import timedelta
from unittest import mock

from django.core import mail
from django.utils import timezone

from portal.ethics import services as ethics
from portal.ethics.models import ReminderSent
from portal.ethics.reminders import reminders_send
from portal.notifications.models import Notification
from portal.notifications.services import notifications_mail_redeliver
from tests.access.test_requests_services import submitted, world  # noqa: F401  (the fixture)
from tests.access.test_requests_services import svc as access
from tests.ethics.test_reminders import _active
from tests.ethics.test_services import _draft, setting  # noqa: F401  (the fixture)


def _inbox():  # type: ignore[no-untyped-def]
    return sorted((n.recipient.email, n.area, n.subject, n.url) for n in Notification.objects.select_related("recipient"))


def test_protocol_submitted_lands_in_the_inbox_of_the_chair_and_the_secretariat(
    setting, django_capture_on_commit_callbacks  # noqa: F811
):
    protocol = _draft(setting)

    with django_capture_on_commit_callbacks(execute=True):
        ethics.protocol_submit(protocol=protocol, by=setting["applicant"])

    url = f"/ethics/protocols/{protocol.pk}/"
    assert _inbox() == [
        ("chair@irb.example.jp", "Ethics review", "A protocol was submitted for review", url),
        ("secretariat@irb.example.jp", "Ethics review", "A protocol was submitted for review", url),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["chair@irb.example.jp", "secretariat@irb.example.jp"]
    assert set(Notification.objects.values_list("mail_status", flat=True)) == {"sent"}


def test_application_screened_lands_in_each_committee_members_inbox(
    world, django_capture_on_commit_callbacks  # noqa: F811
):
    request = submitted(world)
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        access.access_request_screen(access_request=request, society=world.a.society, by=world.a.steward)

    assert _inbox() == [
        (f"dac{i}@jsp.example.jp", "Data access", "A data-access application awaits your review",
         f"/access/requests/{request.pk}/")
        for i in range(3)
    ]


def test_reminder_with_the_mail_server_down_is_issued_but_not_recorded_as_mailed(
    setting, django_capture_on_commit_callbacks  # noqa: F811
):
    protocol = _active(setting, report_in_days=10)
    Notification.objects.all().delete()
    mail.outbox.clear()

    with mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPConnectError(421, "down")), \
            django_capture_on_commit_callbacks(execute=True):
        issued = reminders_send()

    reminder = ReminderSent.objects.get()
    assert [r.pk for r in issued] == [reminder.pk]
    assert (reminder.notification.recipient, reminder.notification.mail_status) == (setting["applicant"], "failed")
    assert reminder.mailed_at is None
    assert mail.outbox == []

    assert notifications_mail_redeliver(now=timezone.now() + timedelta(minutes=11)) == 1

    reminder.refresh_from_db()
    reminder.notification.refresh_from_db()
    assert reminder.mailed_at is not None
    assert [m.to for m in mail.outbox] == [[setting["applicant"].email]]
    assert protocol.number in mail.outbox[0].body
