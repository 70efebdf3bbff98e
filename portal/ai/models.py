"""Hosted prototype AIs (試作AI): models with their model cards, who may run them, and inference jobs.

- ``AIModel``: a named model of one society (the card's fixed part: task, modality, summary, who may
  run it). ``ai.run_aimodel`` is its object permission: held through django-guardian after a light
  access request is approved, or — where ``open_to_grant_holders`` — by everyone holding a grant in
  force on a dataset release of the same society (``portal.ai.permissions.ModelAccessBackend``).
- ``ModelVersion``: one version of the card (labels, input specification, intended use, limits,
  training data, held-out metrics) with its ONNX file, stored through the portal's storage with its
  SHA-256. Draft → published → retired; a published version stays runnable until it is retired.
  Provenance: the releases it was trained and evaluated on. ``ProvenanceNotice`` records that such a
  release was withdrawn or that subjects in it opted out; the card shows the notices.
- ``ModelAccessRequest``: the light request to run a model, decided by a society admin.
- ``InferenceJob`` / ``InferenceItem``: one run of a version over uploaded images (stripped of
  metadata before they are stored) or files of a release the user holds a grant for; per image the
  label and the probabilities, or the reason it failed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.lib.constraints import paired, status_in_choices, when_status
from portal.societies.models import Society

RUN_PERMISSION = "ai.run_aimodel"
# Shown wherever a demo model appears: on pages, in the API and in every results file.
DEMO_NOTICE = _("Demo model, synthetic data, not for clinical use")


def _localised(obj: object, field: str) -> str:
    english = getattr(obj, f"{field}_en", "")
    return english if get_language() == "en" and english else getattr(obj, f"{field}_ja")


class AIModel(models.Model):
    class Task(models.TextChoices):
        CLASSIFICATION = "classification", _("Image classification")
        DETECTION = "detection", _("Object detection")
        SEGMENTATION = "segmentation", _("Segmentation")

    # Tasks the portal can run today; detection and segmentation cards can be registered, not run.
    RUNNABLE_TASKS = (Task.CLASSIFICATION,)

    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="ai_models", verbose_name=_("owner society")
    )
    slug = models.SlugField(_("identifier"), max_length=80, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    task = models.CharField(_("task"), max_length=20, choices=Task.choices, default=Task.CLASSIFICATION)
    modality = models.CharField(_("input modality"), max_length=20, choices=Modality.choices)
    summary_ja = models.TextField(_("summary (Japanese)"), blank=True)
    summary_en = models.TextField(_("summary (English)"), blank=True)
    open_to_grant_holders = models.BooleanField(
        _("holders of a grant on a dataset of the society may run it"), default=False,
        help_text=_("Otherwise every user needs an approved access request."),
    )
    is_demo = models.BooleanField(_("demo model trained on synthetic data"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("AI model")
        verbose_name_plural = _("AI models")
        ordering = ("society_id", "slug")
        permissions = [("run_aimodel", _("Can run the model"))]

    def __str__(self) -> str:
        return self.slug

    @property
    def name(self) -> str:
        return _localised(self, "name")

    @property
    def summary(self) -> str:
        return _localised(self, "summary")


class ModelVersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    RETIRED = "retired", _("Retired")


class ModelVersion(models.Model):
    Status = ModelVersionStatus

    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="versions", verbose_name=_("model"))
    version = models.CharField(_("version"), max_length=40)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    # [{"code": "stomach", "ja": "胃", "en": "Stomach"}, ...] in the order of the model's output.
    labels = models.JSONField(_("labels"), default=list)
    input_width = models.PositiveSmallIntegerField(_("input width (pixels)"))
    input_height = models.PositiveSmallIntegerField(_("input height (pixels)"))
    input_channels = models.PositiveSmallIntegerField(_("input channels"), default=3)
    # Pixel values are scaled to 0..1, then (value - mean) / std per channel.
    input_mean = models.JSONField(_("normalisation mean per channel"), default=list)
    input_std = models.JSONField(_("normalisation standard deviation per channel"), default=list)
    intended_use_ja = models.TextField(_("intended use (Japanese)"))
    intended_use_en = models.TextField(_("intended use (English)"), blank=True)
    limitations_ja = models.TextField(_("limitations (Japanese)"))
    limitations_en = models.TextField(_("limitations (English)"), blank=True)
    training_data_ja = models.TextField(_("training data (Japanese)"))
    training_data_en = models.TextField(_("training data (English)"), blank=True)
    metric_auc = models.FloatField(_("AUC"), null=True, blank=True)
    metric_accuracy = models.FloatField(_("accuracy"), null=True, blank=True)
    metric_sensitivity = models.FloatField(_("sensitivity"), null=True, blank=True)
    metric_specificity = models.FloatField(_("specificity"), null=True, blank=True)
    evaluation_set_size = models.PositiveIntegerField(_("size of the evaluation set (images)"))
    training_releases = models.ManyToManyField(
        DatasetRelease, blank=True, related_name="models_trained", verbose_name=_("trained on releases")
    )
    evaluation_releases = models.ManyToManyField(
        DatasetRelease, blank=True, related_name="models_evaluated", verbose_name=_("evaluated on releases")
    )
    artefact_key = models.CharField(_("ONNX file (storage key)"), max_length=500)
    artefact_sha256 = models.CharField(_("SHA-256 of the ONNX file"), max_length=64)
    artefact_size = models.PositiveBigIntegerField(_("size of the ONNX file (bytes)"))
    input_name = models.CharField(_("input tensor"), max_length=200)
    output_name = models.CharField(_("output tensor"), max_length=200)
    opset = models.PositiveSmallIntegerField(_("ONNX opset"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("published by"),
    )
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("retired by"),
    )
    retire_reason = models.TextField(_("reason for retiring"), blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ("model_id", "-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("model", "version"), name="ai_version_unique_per_model"),
            status_in_choices(ModelVersionStatus, name="ai_version_status_valid"),
            when_status([ModelVersionStatus.PUBLISHED], models.Q(published_at__isnull=False),
                        name="ai_version_published_has_published_at"),
            when_status([ModelVersionStatus.RETIRED], models.Q(retired_at__isnull=False),
                        name="ai_version_retired_has_retired_at"),
        ]

    def __str__(self) -> str:
        return f"{self.model.slug} {self.version}"

    @property
    def intended_use(self) -> str:
        return _localised(self, "intended_use")

    @property
    def limitations(self) -> str:
        return _localised(self, "limitations")

    @property
    def training_data(self) -> str:
        return _localised(self, "training_data")

    @property
    def label_codes(self) -> list[str]:
        return [label["code"] for label in self.labels]

    def label_name(self, code: str) -> str:
        language = "en" if get_language() == "en" else "ja"
        for label in self.labels:
            if label["code"] == code:
                return label.get(language) or code
        return code

    @property
    def is_runnable(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.model.task in AIModel.RUNNABLE_TASKS


class ProvenanceNotice(models.Model):
    """A release a version was trained or evaluated on changed: withdrawn, or subjects opted out."""

    class Kind(models.TextChoices):
        RELEASE_WITHDRAWN = "release_withdrawn", _("Release withdrawn")
        SUBJECTS_OPTED_OUT = "subjects_opted_out", _("Subjects opted out")

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="provenance_notices", verbose_name=_("model version")
    )
    release = models.ForeignKey(DatasetRelease, on_delete=models.PROTECT, related_name="+", verbose_name=_("release"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # For opt-outs: the opt-out request's reference and how many files of the release it concerns;
    # for withdrawals: the reason given. Never a pseudonym.
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("provenance notice")
        verbose_name_plural = _("provenance notices")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.version} / {self.release} ({self.kind})"


class ModelAccessRequestStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    REVOKED = "revoked", _("Revoked")


class ModelAccessRequest(models.Model):
    Status = ModelAccessRequestStatus

    OPEN_STATUSES = (Status.SUBMITTED, Status.APPROVED)

    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="access_requests", verbose_name=_("model"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ai_access_requests",
        verbose_name=_("requested by"),
    )
    purpose = models.TextField(_("purpose of use"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("note on the decision"), blank=True)

    class Meta:
        verbose_name = _("model access request")
        verbose_name_plural = _("model access requests")
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("model", "user"), condition=models.Q(status__in=("submitted", "approved")),
                name="ai_access_request_one_open",
            ),
            status_in_choices(ModelAccessRequestStatus, name="ai_access_request_status_valid"),
            paired("decided_at", "decided_by", name="ai_access_request_decision_paired"),
            # A revoked request was approved first: its decision stays recorded.
            when_status(
                [ModelAccessRequestStatus.APPROVED, ModelAccessRequestStatus.REJECTED, ModelAccessRequestStatus.REVOKED],
                models.Q(decided_at__isnull=False), name="ai_access_request_decided_has_decision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.slug} / {self.user}"


class InferenceJobStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FINISHED_WITH_FAILURES = "finished_with_failures", _("Finished with failures")
    FAILED = "failed", _("Failed")


class InferenceJob(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", _("Uploaded images")
        RELEASE = "release", _("Files of a release")

    Status = InferenceJobStatus

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="inference_jobs", verbose_name=_("run by")
    )
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("model version"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    release = models.ForeignKey(
        DatasetRelease, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("release")
    )
    status = models.CharField(_("status"), max_length=30, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(_("images"), default=0)
    done = models.PositiveIntegerField(_("processed"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # When the job's stored images (uploaded copies, thumbnails) were deleted, by its runner or by
    # the retention rule (``PORTAL_AI_INPUT_RETENTION_DAYS``); the results are kept.
    images_deleted_at = models.DateTimeField(_("images deleted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inference job")
        verbose_name_plural = _("inference jobs")
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("user", "-created_at"), name="ai_job_user_idx")]
        constraints = [
            # A job's images are deleted only once it has ended: a running job still reads them.
            models.CheckConstraint(
                condition=models.Q(images_deleted_at__isnull=True) | ~models.Q(status__in=("pending", "running")),
                name="ai_job_images_deleted_only_when_ended",
            ),
            status_in_choices(InferenceJobStatus, name="ai_job_status_valid"),
        ]

    def __str__(self) -> str:
        return f"ai-job-{self.pk}"

    @property
    def storage_prefix(self) -> str:
        return f"ai/jobs/{self.pk}/"

    @property
    def percent(self) -> int:
        if not self.total:
            return 0 if self.is_active else 100
        return int(100 * self.done / self.total)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class InferenceItemStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class InferenceItem(models.Model):
    Status = InferenceItemStatus

    job = models.ForeignKey(InferenceJob, on_delete=models.CASCADE, related_name="items", verbose_name=_("job"))
    position = models.PositiveIntegerField(_("position"))
    name = models.CharField(_("file name"), max_length=255)
    input_sha256 = models.CharField(_("SHA-256 of the input"), max_length=64)
    stored_key = models.CharField(_("stored image (storage key)"), max_length=600, blank=True)
    thumbnail_key = models.CharField(_("thumbnail (storage key)"), max_length=600, blank=True)
    release_file = models.ForeignKey(
        ReleaseFile, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("release file")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(_("reason"), blank=True)
    label = models.CharField(_("label"), max_length=100, blank=True)
    # {label code: probability} in the order of the card's labels.
    probabilities = models.JSONField(_("probabilities"), default=dict, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inference result")
        verbose_name_plural = _("inference results")
        ordering = ("job_id", "position")
        constraints = [
            models.UniqueConstraint(fields=("job", "position"), name="ai_item_unique_position"),
            status_in_choices(InferenceItemStatus, name="ai_item_status_valid"),
        ]
        indexes = [models.Index(fields=("job", "status"), name="ai_item_job_status_idx")]

    def __str__(self) -> str:
        return self.name
