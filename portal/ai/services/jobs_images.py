"""Inference jobs: deleting their images (on request and by the retention rule)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ai.models import InferenceItem, InferenceJob
from portal.ai.services._common import logger
from portal.audit.services import audit_record

RETENTION = "ai-retention"  # the actor of deletions the retention rule makes
ENDED_STATUSES = tuple(s for s in InferenceJob.Status.values if s not in InferenceJob.ACTIVE_STATUSES)


# Items holding an image of the job's own: a thumbnail, or an uploaded copy. A release file's
# ``stored_key`` is the release's copy, which belongs to the release and is never deleted here.
HOLDS_IMAGES = Q(thumbnail_key__gt="") | Q(stored_key__gt="", release_file__isnull=True)


def _delete_after_commit(keys: list[str]) -> None:
    """Delete the files once the transaction that forgot them commits (a rollback loses nothing).

    A file that cannot be deleted is logged, not retried: no row points to it any more."""

    def delete() -> None:
        for key in keys:
            try:
                default_storage.delete(key)
            except Exception:  # one storage error must not keep the other files
                logger.exception("Could not delete the AI job image %s", key)

    if keys:
        transaction.on_commit(delete)


def _job_images_delete(*, job_id: int, by: User | None, reason: str, details: dict[str, Any]) -> InferenceJob:
    """Forget and delete the job's images under the job's lock; refuses an active or emptied job."""
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().get(pk=job_id)
        if job.is_active:
            raise ValidationError(
                _("The job is still running; its images can be deleted when it has finished."), code="active")
        if job.images_deleted_at is not None:
            raise ValidationError(
                _("The images of this job were already deleted on %(date)s.")
                % {"date": formats.date_format(timezone.localtime(job.images_deleted_at), "DATETIME_FORMAT")},
                code="already_deleted",
            )
        items = list(InferenceItem.objects.filter(HOLDS_IMAGES, job_id=job.pk).order_by("position"))
        if not items:
            raise ValidationError(_("This job has no stored images to delete."), code="no_images")
        prefix = job.storage_prefix
        inputs = [i.stored_key for i in items if i.stored_key and i.release_file_id is None]
        thumbnails = [i.thumbnail_key for i in items if i.thumbnail_key]
        # Only what the job stored itself, under its own prefix: never a release's file.
        keys = [key for key in (*inputs, *thumbnails) if key.startswith(prefix)]
        InferenceItem.objects.filter(job_id=job.pk).update(stored_key="", thumbnail_key="")
        job.images_deleted_at = timezone.now()
        job.save(update_fields=["images_deleted_at"])
        audit_record(
            action="ai.job_images_deleted", actor=by, actor_email="" if by else RETENTION, target=job,
            details={"reason": reason, "inputs_deleted": len(inputs), "thumbnails_deleted": len(thumbnails),
                     "release_files_kept": sum(1 for i in items if i.release_file_id is not None), **details},
        )
        _delete_after_commit(keys)
    return job


def retention_days() -> int:
    """Days a job's images are kept after it ended (``PORTAL_AI_INPUT_RETENTION_DAYS``; 0: until deleted)."""
    return max(int(getattr(settings, "PORTAL_AI_INPUT_RETENTION_DAYS", 30)), 0)


def inference_job_images_delete(*, job: InferenceJob, by: User) -> InferenceJob:
    """Delete the job's stored images: the uploaded (stripped) copies and every thumbnail.

    Only the job's runner may; not while it runs. The results stay (label, probabilities, the
    inputs' SHA-256), so the job can still be reported and matched to the original files; files of
    a release stay with the release. The files go after the commit. A second call is refused: there
    is nothing left to delete."""
    if by is None or not getattr(by, "is_authenticated", False) or by.pk != job.user_id:
        raise PermissionDenied(_("Only the person who ran the job can delete its images."))
    deleted = _job_images_delete(job_id=job.pk, by=by, reason="owner", details={})
    job.images_deleted_at = deleted.images_deleted_at
    return deleted


def inference_images_purge(*, now: datetime | None = None) -> int:
    """Delete the images of jobs that ended more than ``PORTAL_AI_INPUT_RETENTION_DAYS`` ago (0: keep).

    One transaction per job, audited with the reason "retention"; returns the number of jobs."""
    days = retention_days()
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with_images = InferenceItem.objects.filter(HOLDS_IMAGES, job_id=OuterRef("pk"))
    due = (
        InferenceJob.objects.filter(status__in=ENDED_STATUSES, images_deleted_at__isnull=True)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        .filter(Exists(with_images))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    purged = 0
    for job_id in list(due):
        try:
            _job_images_delete(job_id=job_id, by=None, reason="retention", details={"retention_days": days})
        except ValidationError:  # deleted or emptied meanwhile by its runner
            continue
        except Exception:  # one job's trouble must not keep the others' images
            logger.exception("Could not delete the images of AI job %s", job_id)
            continue
        purged += 1
    return purged
