"""Medical societies that own image collections, and the people who act for them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organization


class Society(models.Model):
    class Kind(models.TextChoices):
        ACADEMIC = "academic", _("Medical society")
        PLATFORM = "platform", _("Platform operator")

    slug = models.SlugField(_("slug"), unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.ACADEMIC)
    image_types_ja = models.CharField(_("image types (Japanese)"), max_length=200, blank=True)
    image_types_en = models.CharField(_("image types (English)"), max_length=200, blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    website = models.URLField(_("website"), blank=True)
    organization = models.OneToOneField(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="society",
        verbose_name=_("organisation"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("society")
        verbose_name_plural = _("societies")
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def name(self) -> str:
        return self.name_en if get_language() == "en" else self.name_ja

    @property
    def image_types(self) -> str:
        return (self.image_types_en if get_language() == "en" else self.image_types_ja) or ""

    @property
    def description(self) -> str:
        if get_language() == "en" and self.description_en:
            return self.description_en
        return self.description_ja


class SocietyMembership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Society admin")
        STEWARD = "steward", _("Data steward")
        ACCESS_COMMITTEE = "access_committee", _("Data access committee member")
        MEMBER = "member", pgettext_lazy("society role", "Member")

    society = models.ForeignKey(Society, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="society_memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("society membership")
        verbose_name_plural = _("society memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["society", "user", "role"], name="society_membership_unique_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.society.slug} ({self.role})"
