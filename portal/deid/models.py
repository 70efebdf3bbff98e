"""Anonymisation jobs (匿名化ジョブ) and what each of their files became.

A job takes files from an upload, a folder on the server (under ``PORTAL_DEID_IMPORT_ROOT``) or an
S3 prefix in the default storage, de-identifies each in a Celery chunk task, and writes the output
under ``deid/<job id>/<relative path>`` in the default storage. One ``DeidFileResult`` per source
file (unique per job and path, so a repeated chunk overwrites instead of adding). Only a finished
job's changed/unchanged files may become a dataset release.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.datasets.models import Dataset
from portal.lib.constraints import status_in_choices
from portal.societies.models import Society

TABLE_EDITION = "2024b"


class DeidJobStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FINISHED_WITH_FAILURES = "finished_with_failures", _("Finished with failures")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class DeidJob(models.Model):
    class SourceKind(models.TextChoices):
        UPLOAD = "upload", _("Uploaded files")
        SERVER_FOLDER = "server_folder", _("Folder on the server")
        S3_PREFIX = "s3_prefix", _("Storage prefix")

    Status = DeidJobStatus

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)
    DONE_STATUSES = (Status.FINISHED, Status.FINISHED_WITH_FAILURES, Status.FAILED, Status.CANCELLED)

    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="deid_jobs", verbose_name=_("society")
    )
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, null=True, blank=True, related_name="deid_jobs",
        verbose_name=_("dataset"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    source_kind = models.CharField(_("source"), max_length=20, choices=SourceKind.choices)
    source = models.CharField(_("source reference"), max_length=500, blank=True)
    options = models.JSONField(_("options"), default=list, blank=True)
    institution_code = models.CharField(_("institution code"), max_length=40, blank=True)
    table_roles = models.JSONField(_("table column roles"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=30, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(_("files"), default=0)
    done = models.PositiveIntegerField(_("processed"), default=0)
    held_back = models.PositiveIntegerField(_("held back"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    release = models.ForeignKey(
        "datasets.DatasetRelease", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("release"),
    )

    class Meta:
        verbose_name = _("anonymisation job")
        verbose_name_plural = _("anonymisation jobs")
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("society", "-created_at"), name="deid_job_society_idx")]
        constraints = [status_in_choices(DeidJobStatus, name="deid_job_status_valid")]

    def __str__(self) -> str:
        return f"deid-job-{self.pk}"

    @property
    def output_prefix(self) -> str:
        return f"deid/{self.pk}/"

    @property
    def upload_prefix(self) -> str:
        """Where uploaded source files wait (never released; deleted with the job's sources)."""
        return f"deid-sources/{self.pk}/"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.status in self.DONE_STATUSES else 0)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class DeidFileResultStatus(models.TextChoices):
    CHANGED = "changed", _("Changed")
    UNCHANGED = "unchanged", _("Unchanged")
    HELD_BACK = "held_back", _("Held back")
    FAILED = "failed", _("Failed")


class DeidFileResult(models.Model):
    Status = DeidFileResultStatus

    RELEASABLE = (Status.CHANGED, Status.UNCHANGED)

    job = models.ForeignKey(DeidJob, on_delete=models.CASCADE, related_name="results", verbose_name=_("job"))
    source_path = models.CharField(_("source path"), max_length=500)
    storage_key = models.CharField(_("output storage key"), max_length=600, blank=True)
    kind = models.CharField(_("kind"), max_length=10, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reason = models.TextField(_("reason"), blank=True)
    actions = models.JSONField(_("actions"), default=dict, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    size = models.PositiveBigIntegerField(_("size"), default=0)
    subject_pseudonym = models.CharField(_("pseudonymous subject ID"), max_length=64, blank=True)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    modality = models.CharField(_("modality"), max_length=40, blank=True)
    media_type = models.CharField(_("media type"), max_length=100, blank=True)
    processed_at = models.DateTimeField(_("processed at"), auto_now=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_note = models.TextField(_("review note"), blank=True)

    class Meta:
        verbose_name = _("anonymisation file result")
        verbose_name_plural = _("anonymisation file results")
        ordering = ("source_path",)
        constraints = [
            models.UniqueConstraint(fields=("job", "source_path"), name="deid_result_unique_job_path"),
            status_in_choices(DeidFileResultStatus, name="deid_result_status_valid"),
        ]
        indexes = [models.Index(fields=("job", "status"), name="deid_result_job_status_idx")]

    def __str__(self) -> str:
        return self.source_path
