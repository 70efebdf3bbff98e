"""Grants: named users × releases × expiry — the entitlement the rest of the chain checks.

This is the part of the access app that the opt-out propagation needs (who holds which release).
The application workflow, agreements and signed links that create and use grants come with the
data-access issue; until then grants are created by the platform operator (admin) and the demo.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Grant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")
        ENDED = "ended", _("Ended")

    reference = models.CharField(_("grant number"), max_length=30, unique=True)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="grants", verbose_name=_("named users")
    )
    releases = models.ManyToManyField(
        "datasets.DatasetRelease", related_name="grants", verbose_name=_("releases")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.reference

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.ACTIVE and self.starts_at <= now < self.expires_at
