"""Datasets that societies publish, and their releases: immutable, versioned manifests of files.

A dataset (データセット) describes a collection; what can be downloaded is always one release of it.
A release is written once, in one transaction, from a manifest whose every file was found and
checked; afterwards only its withdrawal may be recorded (``DatasetRelease.WITHDRAWAL_FIELDS``).
The files themselves live in Django's default storage (local disk or S3-compatible), each under
its ``ReleaseFile.storage_key``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality
from portal.ethics.models import Protocol
from portal.lib.constraints import status_in_choices, when_status
from portal.societies.models import Society


class AnnotationGranularity(models.TextChoices):
    NONE = "none", _("No annotation")
    NORMAL_ABNORMAL = "normal_abnormal", _("Normal / abnormal")
    DIAGNOSIS = "diagnosis", _("Diagnosis name")
    TISSUE = "tissue", _("Tissue name")
    RECTANGLE = "rectangle", _("Rectangle marking")
    CELL_OUTLINE = "cell_outline", _("Cell-level outline")


class LegalStatus(models.TextChoices):
    """The data's status under the APPI (REGULATION.md §0.2): linked data are not 匿名加工情報."""

    PERSONAL = "personal", _("Personal information")
    PSEUDONYMISED = "pseudonymised", _("Pseudonymised information")
    ANONYMISED = "anonymised", _("Anonymised information")
    STATISTICS = "statistics", _("Statistical information")


class AccessTier(models.TextChoices):
    OPEN_METADATA = "open_metadata", _("Open metadata only")
    CONTROLLED = "controlled", _("Controlled access")
    COMMERCIAL = "commercial", _("Controlled access, commercial use allowed")


class DatasetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Dataset(models.Model):
    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="datasets", verbose_name=_("society")
    )
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    modality = models.CharField(_("modality"), max_length=20, choices=Modality.choices)
    body_part = models.CharField(_("body part"), max_length=100, blank=True)
    disease_areas = models.CharField(
        _("disease areas"), max_length=300, blank=True, help_text=_("Separate several with commas.")
    )
    annotation_granularity = models.CharField(
        _("annotation granularity"),
        max_length=20,
        choices=AnnotationGranularity.choices,
        default=AnnotationGranularity.NONE,
    )
    annotation_format = models.CharField(_("annotation format"), max_length=100, blank=True)
    # Declared by the society while a draft; set from the newest release once there is one.
    case_count = models.PositiveIntegerField(_("number of cases"), default=0)
    image_count = models.PositiveIntegerField(_("number of images"), default=0)
    collection_start = models.DateField(_("collection period from"), null=True, blank=True)
    collection_end = models.DateField(_("collection period to"), null=True, blank=True)
    legal_status = models.CharField(
        _("legal status of the data"),
        max_length=20,
        choices=LegalStatus.choices,
        default=LegalStatus.PSEUDONYMISED,
    )
    protocol = models.ForeignKey(
        Protocol,
        on_delete=models.PROTECT,
        related_name="datasets",
        verbose_name=_("research protocol"),
    )
    access_tier = models.CharField(
        _("access tier"), max_length=20, choices=AccessTier.choices, default=AccessTier.CONTROLLED
    )
    status = models.CharField(
        _("status"), max_length=20, choices=DatasetStatus.choices, default=DatasetStatus.DRAFT
    )
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        ordering = ["society_id", "id"]
        indexes = [models.Index(fields=["status", "society"], name="dataset_status_society")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(collection_start__isnull=True)
                | models.Q(collection_end__isnull=True)
                | models.Q(collection_start__lte=models.F("collection_end")),
                name="dataset_collection_period_ordered",
            ),
            status_in_choices(DatasetStatus, name="dataset_status_valid"),
            when_status([DatasetStatus.PUBLISHED], models.Q(published_at__isnull=False),
                        name="dataset_published_has_published_at"),
            when_status([DatasetStatus.WITHDRAWN],
                        models.Q(withdrawn_at__isnull=False) & ~models.Q(withdrawal_reason=""),
                        name="dataset_withdrawn_has_withdrawal"),
        ]

    def __str__(self) -> str:
        return self.title_ja

    @property
    def title(self) -> str:
        return self.title_en if get_language() == "en" and self.title_en else self.title_ja

    @property
    def description(self) -> str:
        if get_language() == "en" and self.description_en:
            return self.description_en
        return self.description_ja

    @property
    def disease_area_list(self) -> list[str]:
        return [part.strip() for part in self.disease_areas.replace("、", ",").split(",") if part.strip()]

    @property
    def commercial_use_allowed(self) -> bool:
        return self.access_tier == AccessTier.COMMERCIAL


class ReleaseImmutable(ValidationError):
    """A release or one of its files was about to be changed after it was written."""


class ReleaseQuerySet(models.QuerySet):
    """Bulk writes obey the same rule as ``save``: only the withdrawal may be recorded."""

    def update(self, **kwargs):  # type: ignore[no-untyped-def]
        if not set(kwargs) <= set(DatasetRelease.WITHDRAWAL_FIELDS) | {"withdrawn_by_id"}:
            raise ReleaseImmutable(
                _("A release is never edited; withdraw it and build a new one."), code="immutable"
            )
        return super().update(**kwargs)

    def delete(self):  # type: ignore[no-untyped-def]
        raise ReleaseImmutable(_("A release is never deleted; withdraw it."), code="immutable")


class ReleaseFileQuerySet(models.QuerySet):
    def update(self, **kwargs):  # type: ignore[no-untyped-def]
        raise ReleaseImmutable(_("A release's files are never edited."), code="immutable")

    def delete(self):  # type: ignore[no-untyped-def]
        raise ReleaseImmutable(_("A release's files are never deleted."), code="immutable")


class DatasetReleaseStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class DatasetRelease(models.Model):
    Status = DatasetReleaseStatus

    class Source(models.TextChoices):
        IMPORT = "import", _("Imported folder")
        UPLOAD = "upload", _("Uploaded files")
        DEID_JOB = "deid_job", _("Anonymisation job")

    # The only fields that may change after a release is written: its withdrawal.
    WITHDRAWAL_FIELDS = ("status", "withdrawn_at", "withdrawn_by", "withdrawal_reason")

    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="releases", verbose_name=_("dataset")
    )
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.AVAILABLE
    )
    notes_ja = models.TextField(_("release notes (Japanese)"), blank=True)
    notes_en = models.TextField(_("release notes (English)"), blank=True)
    source = models.CharField(_("built from"), max_length=20, choices=Source.choices)
    source_reference = models.CharField(_("source reference"), max_length=200, blank=True)
    case_count = models.PositiveIntegerField(_("number of cases"), default=0)
    image_count = models.PositiveIntegerField(_("number of images"), default=0)
    file_count = models.PositiveIntegerField(_("number of files"), default=0)
    total_bytes = models.BigIntegerField(_("total size (bytes)"), default=0)
    excluded_subject_count = models.PositiveIntegerField(
        _("subjects excluded by opt-out"), default=0
    )
    earliest_study_date = models.DateField(_("earliest study date"), null=True, blank=True)
    latest_study_date = models.DateField(_("latest study date"), null=True, blank=True)
    manifest_sha256 = models.CharField(_("manifest SHA-256"), max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        verbose_name = _("dataset release")
        verbose_name_plural = _("dataset releases")
        ordering = ["dataset_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="release_unique_version"),
            status_in_choices(DatasetReleaseStatus, name="release_status_valid"),
            when_status([DatasetReleaseStatus.WITHDRAWN],
                        models.Q(withdrawn_at__isnull=False) & ~models.Q(withdrawal_reason=""),
                        name="release_withdrawn_has_withdrawal"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= set(self.WITHDRAWAL_FIELDS):
                raise ReleaseImmutable(
                    _("A release is never edited; withdraw it and build a new one."), code="immutable"
                )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ReleaseImmutable(_("A release is never deleted; withdraw it."), code="immutable")

    @property
    def storage_prefix(self) -> str:
        """Where the test factory and demo write a release's files.

        Imports store files under ``releases/<slug>/incoming-<token>/`` before the version is known;
        ``ReleaseFile.storage_key`` is always the authority on where a file is.
        """
        return f"releases/{self.dataset.slug}/v{self.version}/"

    @property
    def notes(self) -> str:
        return self.notes_en if get_language() == "en" and self.notes_en else self.notes_ja

    @property
    def is_provided(self) -> bool:
        """Given out now: the release is available and its dataset published (a draft's or a
        withdrawn dataset's release is not provided, whatever its own status)."""
        return self.status == self.Status.AVAILABLE and self.dataset.status == DatasetStatus.PUBLISHED

    def get_shown_status_display(self) -> str:
        """The release's status as pages show it: 提供中 only while ``is_provided``."""
        if self.status != self.Status.AVAILABLE or self.is_provided:
            return str(self.get_status_display())  # type: ignore[attr-defined]
        if self.dataset.status == DatasetStatus.WITHDRAWN:
            return pgettext("release status", "Not provided: the dataset was withdrawn")
        return pgettext("release status", "Not yet provided: the dataset is not published")


class ReleaseFile(models.Model):
    """One file of a release's manifest. Written with its release and never changed."""

    release = models.ForeignKey(
        DatasetRelease, on_delete=models.PROTECT, related_name="files", verbose_name=_("release")
    )
    path = models.CharField(_("path in the release"), max_length=500)
    storage_key = models.CharField(_("storage key"), max_length=700)
    size = models.BigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    media_type = models.CharField(_("media type"), max_length=100)
    subject_pseudonym = models.CharField(_("pseudonymous subject ID"), max_length=64)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    modality = models.CharField(_("modality"), max_length=20, choices=Modality.choices)
    # The path of the file in the same release that annotates this one ("" when none).
    annotation_path = models.CharField(_("annotation file"), max_length=500, blank=True)
    is_annotation = models.BooleanField(_("annotation file"), default=False)

    objects = ReleaseFileQuerySet.as_manager()

    class Meta:
        verbose_name = _("release file")
        verbose_name_plural = _("release files")
        ordering = ["release_id", "path"]
        constraints = [
            models.UniqueConstraint(fields=["release", "path"], name="release_file_unique_path")
        ]
        indexes = [
            # Opt-out: which releases hold a subject.
            models.Index(fields=["subject_pseudonym", "release"], name="release_file_subject"),
        ]

    def __str__(self) -> str:
        return self.path

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise ReleaseImmutable(_("A release's files are never edited."), code="immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ReleaseImmutable(_("A release's files are never deleted."), code="immutable")
