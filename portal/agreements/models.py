"""Agreement templates per society, versioned, with structured IP and ownership terms; signatures.

A society keeps one or more ``AgreementTemplate`` (データ利用契約, 共同研究契約); what it says lives
in numbered ``AgreementTemplateVersion`` rows whose terms are structured fields (who owns the
images, the annotated data and derived models; patents; publication; commercial use; fees; term
and destruction; prohibitions; security; benefit sharing) as well as the full text. Publishing a
version supersedes the previous one; agreements already signed stay on the version they signed.

A ``SignedAgreement`` records the applicant's click-through signature (name, title, time, IP, the
exact version and a snapshot of its terms), the PDF rendered from them with its SHA-256, and the
society's countersignature that completes it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from portal.lib.constraints import status_in_choices, when_status
from portal.societies.models import Society


class Owner(models.TextChoices):
    SOCIETY = "society", _("The society")
    PROVIDING_INSTITUTIONS = "institutions", _("The providing institutions")
    USER = "user", _("The data user")
    JOINT = "joint", _("Jointly owned")


class AgreementTemplate(models.Model):
    class Kind(models.TextChoices):
        DATA_USE = "data_use", _("Data-use agreement")
        JOINT_RESEARCH = "joint_research", _("Joint-research agreement")

    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="agreement_templates", verbose_name=_("society")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.DATA_USE)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    # The version applicants sign now (null until the first is published).
    current_version = models.OneToOneField(
        "AgreementTemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("current version"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("agreement template")
        verbose_name_plural = _("agreement templates")
        ordering = ["society_id", "id"]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def name(self) -> str:
        return self.name_en if get_language() == "en" and self.name_en else self.name_ja


class AgreementTemplateVersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    SUPERSEDED = "superseded", _("Superseded")


class AgreementTemplateVersion(models.Model):
    Status = AgreementTemplateVersionStatus

    # The structured terms, in the order they are shown and compared across societies.
    TERM_FIELDS = (
        "images_owner", "annotated_data_owner", "model_owner", "model_licence_to_society",
        "patent_notice_required", "patent_consent_required", "patent_licence_back",
        "publication_duties_ja", "acknowledgement_required", "cite_dataset_release",
        "commercial_use_allowed", "fee_jpy", "fee_terms_ja", "term_months", "extension_allowed",
        "destruction_at_end", "deletion_certificate_required", "onward_transfer_prohibited",
        "reidentification_prohibited", "contact_subjects_prohibited", "security_obligations_ja",
        "benefit_sharing_ja", "resign_on_new_version",
    )

    template = models.ForeignKey(AgreementTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    body_ja = models.TextField(_("full text (Japanese)"))
    body_en = models.TextField(_("full text (English)"), blank=True)
    change_summary = models.TextField(_("what changed in this version"), blank=True)

    images_owner = models.CharField(_("owner of the images"), max_length=20, choices=Owner.choices,
                                    default=Owner.PROVIDING_INSTITUTIONS)
    annotated_data_owner = models.CharField(_("owner of annotated training data"), max_length=20,
                                            choices=Owner.choices, default=Owner.SOCIETY)
    model_owner = models.CharField(_("owner of models and algorithms derived from the data"), max_length=20,
                                   choices=Owner.choices, default=Owner.USER)
    model_licence_to_society = models.BooleanField(
        _("derived models licensed to the society free of charge for research"), default=False)
    patent_notice_required = models.BooleanField(_("patent applications notified to the society"), default=True)
    patent_consent_required = models.BooleanField(_("patent applications need the society's consent"), default=False)
    patent_licence_back = models.BooleanField(_("licence back of patents to the society"), default=False)
    publication_duties_ja = models.TextField(_("publication and acknowledgement duties"), blank=True)
    acknowledgement_required = models.BooleanField(_("acknowledgement of the society required"), default=True)
    cite_dataset_release = models.BooleanField(_("publications cite the dataset and release"), default=True)
    commercial_use_allowed = models.BooleanField(_("commercial use allowed"), default=False)
    fee_jpy = models.PositiveIntegerField(_("fee (yen)"), default=0)
    fee_terms_ja = models.TextField(_("fee terms"), blank=True)
    term_months = models.PositiveIntegerField(_("term (months)"), default=12)
    extension_allowed = models.BooleanField(_("extension allowed"), default=True)
    destruction_at_end = models.BooleanField(_("data destroyed at the end of use"), default=True)
    deletion_certificate_required = models.BooleanField(_("deletion certificate required"), default=True)
    onward_transfer_prohibited = models.BooleanField(_("no onward transfer"), default=True)
    reidentification_prohibited = models.BooleanField(_("no re-identification"), default=True)
    contact_subjects_prohibited = models.BooleanField(_("no contact with data subjects"), default=True)
    security_obligations_ja = models.TextField(_("security obligations"), blank=True)
    benefit_sharing_ja = models.TextField(_("benefit sharing with annotators"), blank=True)
    resign_on_new_version = models.BooleanField(
        _("holders must re-sign when a new version is published"), default=False)

    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("agreement template version")
        verbose_name_plural = _("agreement template versions")
        ordering = ["template_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="agreement_version_unique"),
            models.UniqueConstraint(fields=["template"], condition=Q(status="draft"),
                                    name="agreement_one_draft"),
            models.UniqueConstraint(fields=["template"], condition=Q(status="published"),
                                    name="agreement_one_published"),
            status_in_choices(AgreementTemplateVersionStatus, name="agreement_version_status_valid"),
            # A superseded version was published before it was superseded.
            when_status([AgreementTemplateVersionStatus.PUBLISHED, AgreementTemplateVersionStatus.SUPERSEDED],
                        Q(published_at__isnull=False), name="agreement_version_published_has_published_at"),
        ]

    def __str__(self) -> str:
        return f"{self.template.name_ja} v{self.number}"

    # What a signature rests on: fixed once the version is published (only its status moves on).
    CONTENT_FIELDS = ("template", "number", "body_ja", "body_en", "change_summary", *TERM_FIELDS)

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            stored = type(self).objects.filter(pk=self.pk).values("status", *self.CONTENT_FIELDS).first()
            if stored is not None and stored["status"] != self.Status.DRAFT:
                current = {name: getattr(self, "template_id" if name == "template" else name)
                           for name in self.CONTENT_FIELDS}
                changed = sorted(name for name in self.CONTENT_FIELDS if stored[name] != current[name])
                if changed:
                    raise ValidationError(
                        _("A published agreement version is never edited; publish a new version instead."),
                        code="published_version_immutable",
                    )
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def terms(self) -> dict[str, object]:
        """The structured terms as plain values: stored with every signature."""
        return {name: getattr(self, name) for name in self.TERM_FIELDS}


class SignedAgreementStatus(models.TextChoices):
    SIGNED = "signed", _("Signed by the applicant")
    COMPLETED = "completed", _("Countersigned")


class SignedAgreement(models.Model):
    Status = SignedAgreementStatus

    access_request = models.ForeignKey(
        "access.AccessRequest", on_delete=models.PROTECT, related_name="agreements",
        verbose_name=_("data-access application"),
    )
    society = models.ForeignKey(Society, on_delete=models.PROTECT, related_name="+", verbose_name=_("society"))
    template_version = models.ForeignKey(
        AgreementTemplateVersion, on_delete=models.PROTECT, related_name="signatures",
        verbose_name=_("agreement version"),
    )
    terms = models.JSONField(_("terms signed"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.SIGNED)
    signatory = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signed_agreements",
        verbose_name=_("signatory"),
    )
    signatory_name = models.CharField(_("signatory's name"), max_length=200)
    signatory_title = models.CharField(_("signatory's title"), max_length=200)
    signed_at = models.DateTimeField(_("signed at"))
    signed_ip = models.GenericIPAddressField(_("signed from"), null=True, blank=True)
    countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True,
        verbose_name=_("countersigned by"),
    )
    countersigner_name = models.CharField(_("countersigner's name"), max_length=200, blank=True)
    countersigner_title = models.CharField(_("countersigner's title"), max_length=200, blank=True)
    countersigned_at = models.DateTimeField(_("countersigned at"), null=True, blank=True)
    countersigned_ip = models.GenericIPAddressField(_("countersigned from"), null=True, blank=True)
    pdf = models.FileField(_("agreement PDF"), upload_to="agreements/%Y/%m/", blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("signed agreement")
        verbose_name_plural = _("signed agreements")
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(countersigned_at__isnull=True, countersigned_by__isnull=True)
                | Q(countersigned_at__isnull=False, countersigned_by__isnull=False),
                name="signed_agreement_countersignature_paired",
            ),
            status_in_choices(SignedAgreementStatus, name="signed_agreement_status_valid"),
            when_status([SignedAgreementStatus.COMPLETED], Q(countersigned_at__isnull=False),
                        name="signed_agreement_completed_countersigned"),
        ]

    def __str__(self) -> str:
        return f"{self.template_version} / {self.signatory_name}"
