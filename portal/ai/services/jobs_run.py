"""Inference jobs: running them in batches, finishing and resuming."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.ai.models import InferenceItem, InferenceJob, ModelVersion
from portal.ai.services._common import THUMBNAIL_SIZE, WORKER, _queue_run, logger
from portal.ai.workflow import INFERENCE_JOB
from portal.audit.services import audit_record
from portal.lib.workflow import transition


def _load_session(version: ModelVersion) -> Any:
    from portal.ai.onnx_model import session_for

    def load() -> bytes:
        with default_storage.open(version.artefact_key, "rb") as handle:
            return handle.read()

    return session_for(version.artefact_sha256, load)


def _pipeline(
    session: Any, items: list[InferenceItem], to_tensor: Callable[[InferenceItem], Any], batch_size: int,
) -> Iterable[tuple[list[InferenceItem], list[Any]]]:
    """Batches of (items, per item: probabilities (K,) or the Exception that failed it), preparing
    the next batch while ONNX Runtime runs this one (``portal.ai.inference.run_pipeline``)."""
    from portal.ai.inference import run_pipeline

    for pairs in run_pipeline(session, items, to_tensor, batch_size):
        yield [item for item, _outcome in pairs], [outcome for _item, outcome in pairs]


def _reason(error: BaseException) -> str:
    from portal.ai.preprocess import ImageRefused

    if isinstance(error, ImageRefused):
        return str(error)
    if isinstance(error, OSError):
        return _("The stored image could not be read: %(error)s") % {"error": error}
    return _("The image could not be processed: %(error)s") % {"error": f"{type(error).__name__}: {error}"}


def _thumbnail(image: Any) -> bytes:
    thumbnail = image.convert("L") if image.mode == "F" else image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    out = io.BytesIO()
    thumbnail.save(out, format="PNG")
    return out.getvalue()


def _recount(job_id: int) -> dict[str, int]:
    counts = dict(
        InferenceItem.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")).order_by()
    )
    done = counts.get(InferenceItem.Status.SUCCEEDED, 0) + counts.get(InferenceItem.Status.FAILED, 0)
    return {"done": done, "failed": counts.get(InferenceItem.Status.FAILED, 0),
            "pending": counts.get(InferenceItem.Status.PENDING, 0)}


def _finish(job_id: int, *, error: str = "") -> None:
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("version__model").get(pk=job_id)
        if job.status not in InferenceJob.ACTIVE_STATUSES:
            return
        if error:
            InferenceItem.objects.filter(job_id=job_id, status=InferenceItem.Status.PENDING).update(
                status=InferenceItem.Status.FAILED, reason=error, processed_at=timezone.now()
            )
        counts = _recount(job_id)
        if counts["pending"]:
            return
        outcome = ("fail" if error or counts["failed"] == job.total
                   else "finish_with_failures" if counts["failed"] else "finish")
        job.done, job.failed, job.error = counts["done"], counts["failed"], error
        job.finished_at = timezone.now()
        job.started_at = job.started_at or job.finished_at
        transition(job, INFERENCE_JOB, outcome, extra_fields=["done", "failed", "error", "finished_at", "started_at"])
        audit_record(action="ai.job_finished", actor=None, actor_email=WORKER, target=job, details={
            "user": job.user_id, "model": job.version.model.slug, "version": job.version.version,
            "status": job.status, "total": job.total, "succeeded": counts["done"] - counts["failed"],
            "failed": counts["failed"], "error": error,
        })


def inference_job_run(*, job_id: int) -> None:
    """Run the job's pending items through the model, batch by batch (see the module notes)."""
    from portal.ai.onnx_model import ModelRefused
    from portal.ai.preprocess import InputSpec, decode, image_to_tensor

    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("version__model").filter(pk=job_id).first()
        if job is None or job.status not in InferenceJob.ACTIVE_STATUSES:
            return
        if job.status == InferenceJob.Status.PENDING:
            job.started_at = timezone.now()
            transition(job, INFERENCE_JOB, "start", extra_fields=["started_at"])
    version = job.version
    items = list(job.items.filter(status=InferenceItem.Status.PENDING).order_by("position"))
    if not items:
        _finish(job_id)
        return
    try:
        session = _load_session(version)
    except (ModelRefused, OSError) as error:
        logger.warning("AI job %s: the model could not be loaded: %s", job_id, error)
        _finish(job_id, error=_("The model could not be loaded: %(error)s") % {"error": error})
        return
    spec = InputSpec.from_version(version)
    codes = version.label_codes
    thumbnails: dict[int, bytes] = {}

    # Decoded once for both the tensor and the thumbnail (in H1's preprocessing threads).
    target = (max(spec.width, THUMBNAIL_SIZE), max(spec.height, THUMBNAIL_SIZE))

    def prepare(item: InferenceItem) -> Any:
        with default_storage.open(item.stored_key, "rb") as handle:
            data = handle.read()
        image = decode(data, target=target)
        tensor = image_to_tensor(image, spec)
        thumbnails[item.pk] = _thumbnail(image)
        return tensor

    batch_size = max(1, int(settings.PORTAL_AI_BATCH_SIZE))
    try:
        _run_batches(job, _pipeline(session, items, prepare, batch_size), codes, thumbnails)
    except Exception as error:  # ONNX Runtime failing on the model itself: the job fails, not loops
        logger.exception("AI job %s: the model failed while running", job_id)
        _finish(job_id, error=_("The model failed while running: %(error)s") % {
            "error": f"{type(error).__name__}: {error}"[:500]})
        return
    _finish(job_id)


def _run_batches(
    job: InferenceJob, batches: Iterable[tuple[list[InferenceItem], list[Any]]], codes: list[str],
    thumbnails: dict[int, bytes],
) -> None:
    """Record each batch's results and the job's progress in one transaction per batch."""
    import numpy as np

    job_id = job.pk
    for batch, outcomes in batches:
        now = timezone.now()
        for item, outcome in zip(batch, outcomes, strict=True):
            item.processed_at = now
            if isinstance(outcome, BaseException):
                item.status, item.reason = InferenceItem.Status.FAILED, _reason(outcome)
                continue
            row = np.asarray(outcome, dtype=float).reshape(-1)
            item.status = InferenceItem.Status.SUCCEEDED
            item.probabilities = {code: round(float(p), 6) for code, p in zip(codes, row, strict=False)}
            item.label = codes[int(np.argmax(row))] if len(row) else ""
            thumbnail = thumbnails.pop(item.pk, None)
            if thumbnail is not None:
                key = f"{job.storage_prefix}thumbnails/{item.position:05d}.png"
                if default_storage.exists(key):
                    default_storage.delete(key)
                item.thumbnail_key = default_storage.save(key, ContentFile(thumbnail))
        with transaction.atomic():
            InferenceItem.objects.bulk_update(
                batch, ["status", "reason", "label", "probabilities", "thumbnail_key", "processed_at"]
            )
            counts = _recount(job_id)
            InferenceJob.objects.filter(pk=job_id).update(done=counts["done"], failed=counts["failed"])


def inference_job_resume(*, job: InferenceJob) -> bool:
    """Queue an active job again (its worker died or its message was lost); audited."""
    with transaction.atomic():
        locked = InferenceJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in InferenceJob.ACTIVE_STATUSES:
            return False
        audit_record(action="ai.job_resumed", actor=None, actor_email=WORKER, target=locked, details={
            "done": locked.done, "total": locked.total,
        })
        _queue_run(locked.pk)
    return True


