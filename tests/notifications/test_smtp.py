"""Mail against a real SMTP server (aiosmtpd) started by the test: a server that is down never fails
the person's action or marks a message sent; once it is back, redelivery sends every message once."""

from __future__ import annotations

import socket
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.ethics.models import CommitteeMembership, Protocol, ProtocolStatus
from portal.notifications.models import Notification
from portal.notifications.services import notifications_mail_redeliver
from portal.notifications.tasks import send_notification_mail_task
from tests.ethics.test_services import _draft, setting  # noqa: F401  (the fixture)

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


# The domain of the portal's sender address names the notifications' Message-IDs.
DOMAIN = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">")


class Recorder:
    """An SMTP handler that keeps every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), parsed["Message-ID"]))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(settings):  # type: ignore[no-untyped-def]
    """Settings pointing at 127.0.0.1:<port> where nothing listens yet; ``start()`` brings a server up."""
    port = _free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 5
    recorder = Recorder()
    controllers = []

    def start() -> Recorder:
        controller = aiosmtpd_controller.Controller(recorder, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return recorder

    yield start
    for controller in controllers:
        controller.stop()


@pytest.mark.django_db(transaction=True)
def test_mail_server_down_then_back_every_message_delivered_once(client, smtp, setting):  # noqa: F811
    protocol = _draft(setting)
    office = CommitteeMembership.objects.filter(
        committee=setting["committee"], active=True, role__in=["secretariat", "chair"]
    ).values_list("user__email", flat=True)
    client.force_login(setting["applicant"])

    # The mail server is down: the applicant's submission still succeeds.
    response = client.post(reverse("ethics:protocol_submit", args=[protocol.pk]))

    assert (response.status_code, response["Location"]) == (302, reverse("ethics:protocol_detail", args=[protocol.pk]))
    assert Protocol.objects.get(pk=protocol.pk).status == ProtocolStatus.SUBMITTED
    rows = list(Notification.objects.order_by("pk"))
    assert sorted(row.recipient.email for row in rows) == sorted(office)
    assert {(row.mail_status, row.mail_attempts, row.mail_sent_at) for row in rows} == {("failed", 1, None)}
    assert all("Connection refused" in row.mail_last_error or "ConnectionRefused" in row.mail_last_error
               for row in rows)

    # Still down at the first redelivery: nothing is marked sent.
    assert notifications_mail_redeliver(now=timezone.now() + timedelta(minutes=11)) == len(rows)
    assert set(Notification.objects.values_list("mail_status", "mail_attempts")) == {("failed", 2)}

    # The server is back: redelivery sends each message, once.
    recorder = smtp()
    assert notifications_mail_redeliver(now=timezone.now() + timedelta(minutes=22)) == len(rows)
    assert notifications_mail_redeliver(now=timezone.now() + timedelta(minutes=33)) == 0
    for row in rows:  # a late task message for the same notification sends nothing
        assert send_notification_mail_task.delay(row.pk).get() == "skipped"

    assert sorted(recipients for recipients, _id in recorder.messages) == sorted([email] for email in office)
    assert sorted(message_id for _to, message_id in recorder.messages) == sorted(
        f"<notification-{row.pk}@{DOMAIN}>" for row in rows)
    sent = list(Notification.objects.order_by("pk"))
    assert {(row.mail_status, row.mail_attempts, row.mail_last_error) for row in sent} == {("sent", 3, "")}
    assert all(row.mail_sent_at is not None for row in sent)


@pytest.mark.django_db(transaction=True)
def test_mail_server_up_delivers_at_once(client, smtp, setting):  # noqa: F811
    recorder = smtp()
    protocol = _draft(setting)
    client.force_login(setting["applicant"])

    client.post(reverse("ethics:protocol_submit", args=[protocol.pk]))

    rows = list(Notification.objects.order_by("pk"))
    assert len(recorder.messages) == len(rows) == 2  # the chair and the secretariat
    assert {row.mail_status for row in rows} == {"sent"}
