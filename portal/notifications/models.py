"""A message the portal sends a person: kept in their inbox, with its e-mail copy's delivery state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.lib.constraints import status_in_choices


class MailStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent yet (will be retried)")
    NO_ADDRESS = "no_address", _("No e-mail address")


class Notification(models.Model):
    """One message to one person. The inbox row is the record; the e-mail is a copy of it.

    ``mail_status`` moves pending → sending → sent, or sending → failed → sending again. Only the
    task that moved the row to ``sending`` (a compare-and-swap) may send it, and it is marked
    ``sent`` only after the mail server accepted the message.
    """

    MailStatus = MailStatus

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
        verbose_name=pgettext_lazy("notification", "recipient"),
    )
    area = models.CharField(_("area"), max_length=100)
    subject = models.CharField(_("subject"), max_length=300)
    body = models.TextField(_("message"), blank=True)
    # A path inside the portal ("/access/requests/12/"); the e-mail gets it with the portal's address.
    url = models.CharField(_("link"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(pgettext_lazy("notification", "read"), null=True, blank=True)

    mail_status = models.CharField(
        _("e-mail"), max_length=12, choices=MailStatus.choices, default=MailStatus.PENDING
    )
    mail_attempts = models.PositiveIntegerField(_("attempts to send"), default=0)
    mail_claimed_at = models.DateTimeField(_("last attempt started"), null=True, blank=True)
    mail_sent_at = models.DateTimeField(_("e-mail sent"), null=True, blank=True)
    mail_to = models.EmailField(_("sent to"), blank=True)
    mail_last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox"),
            models.Index(
                fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
            models.Index(
                fields=["mail_status", "created_at"],
                condition=Q(mail_status__in=["pending", "sending", "failed"]),
                name="notification_mail_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(mail_status="sent", mail_sent_at__isnull=False)
                | (~Q(mail_status="sent") & Q(mail_sent_at__isnull=True)),
                name="notification_sent_paired",
            ),
            models.CheckConstraint(
                condition=~Q(mail_status="sending") | Q(mail_claimed_at__isnull=False),
                name="notification_sending_claimed",
            ),
            models.CheckConstraint(
                condition=Q(url="")
                | (Q(url__startswith="/") & ~Q(url__startswith="//") & ~Q(url__startswith="/\\")),
                name="notification_url_is_a_path",
            ),
            status_in_choices(MailStatus, name="notification_mail_status_valid", field="mail_status"),
        ]

    def __str__(self) -> str:
        return f"[{self.area}] {self.subject}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
