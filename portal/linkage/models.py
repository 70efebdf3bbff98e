"""Cross-society record linkage (名寄せ): who holds records of a pseudonymous subject, and when.

``LinkageRecord`` is an index derived from the release manifests: one row per society, subject,
study date and modality of each dataset's newest available release, rebuilt when a release is
built or withdrawn. Matching queries read it, never the manifests, so that they stay fast at
millions of records. Seeing linked records is itself a permission: a ``LinkageApproval`` granted
by the platform operator.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality
from portal.lib.constraints import paired
from portal.societies.models import Society


class LinkageRecord(models.Model):
    society = models.ForeignKey(
        Society, on_delete=models.CASCADE, related_name="+", verbose_name=_("society")
    )
    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.CASCADE, related_name="+", verbose_name=_("dataset")
    )
    release = models.ForeignKey(
        "datasets.DatasetRelease", on_delete=models.CASCADE, related_name="+", verbose_name=_("release")
    )
    subject_pseudonym = models.CharField(_("pseudonymous subject ID"), max_length=64)
    study_date = models.DateField(_("study date"))
    modality = models.CharField(_("modality"), max_length=20, choices=Modality.choices)
    image_count = models.PositiveIntegerField(_("number of images"), default=0)

    class Meta:
        verbose_name = _("linkage record")
        verbose_name_plural = _("linkage records")
        constraints = [
            models.UniqueConstraint(
                fields=["release", "subject_pseudonym", "study_date", "modality"],
                name="linkage_record_unique",
            )
        ]
        indexes = [
            models.Index(fields=["study_date", "society", "subject_pseudonym"], name="linkage_date_society"),
            # Matching walks subjects in pseudonym order (keyset pages) and reads only the date
            # and society of each record from this index (index-only scan on PostgreSQL).
            models.Index(
                fields=["subject_pseudonym", "study_date", "society"], name="linkage_subject_date"
            ),
        ]

    def __str__(self) -> str:
        # No pseudonym: this may end up in logs.
        return f"{self.modality} {self.study_date} (society {self.society_id})"


class LinkageApproval(models.Model):
    """Permission, granted by the platform operator, to run matching queries over some societies."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="linkage_approvals",
        verbose_name=_("user"),
    )
    societies = models.ManyToManyField(Society, related_name="+", verbose_name=_("societies"))
    purpose = models.TextField(_("purpose"))
    valid_until = models.DateField(_("valid until"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("granted by")
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("linkage approval")
        verbose_name_plural = _("linkage approvals")
        ordering = ["-granted_at"]
        constraints = [paired("revoked_at", "revoked_by", name="linkage_approval_revocation_paired")]

    def __str__(self) -> str:
        return f"{self.user} until {self.valid_until}"
