"""Celery tasks of the inference jobs.

``ai.run_job`` runs a job's pending images (``inference_job_run`` is idempotent); it is acknowledged
late, so a job whose worker dies is delivered again and continues where it stopped.
``ai.resume_stalled`` (beat) queues again the active jobs that have made no progress for
``PORTAL_AI_STALL_MINUTES`` (default 30): a lost message or a worker killed before it acknowledged.
``ai.purge_old_images`` (beat) deletes the images of jobs that ended more than
``PORTAL_AI_INPUT_RETENTION_DAYS`` (default 30; 0 keeps them) ago; the results stay.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

JOB_TIME_LIMIT = 60 * 60
JOB_SOFT_TIME_LIMIT = JOB_TIME_LIMIT - 120


@shared_task(name="ai.run_job", acks_late=True, time_limit=JOB_TIME_LIMIT, soft_time_limit=JOB_SOFT_TIME_LIMIT)
def run_job(job_id: int) -> None:
    from portal.ai.services import inference_job_run

    inference_job_run(job_id=job_id)


@shared_task(name="ai.resume_stalled", time_limit=300)
def resume_stalled() -> int:
    """Queue again the active jobs whose results stopped coming in."""
    from django.db.models import Max, Q

    from portal.ai.models import InferenceJob
    from portal.ai.services import inference_job_resume

    minutes = int(getattr(settings, "PORTAL_AI_STALL_MINUTES", 30))
    cutoff = timezone.now() - timedelta(minutes=minutes)
    jobs = (
        InferenceJob.objects.filter(status__in=InferenceJob.ACTIVE_STATUSES, created_at__lt=cutoff)
        .filter(Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
        .annotate(last=Max("items__processed_at"))
        .order_by("id")
    )
    resumed = 0
    for job in jobs:
        if job.last is not None and job.last >= cutoff:
            continue
        try:
            resumed += int(inference_job_resume(job=job))
        except Exception:  # one job's trouble must not stop the others
            logger.exception("Could not resume AI job %s", job.pk)
    return resumed


@shared_task(name="ai.purge_old_images", time_limit=30 * 60, soft_time_limit=28 * 60)
def purge_old_images() -> int:
    """Delete the stored images of inference jobs past the retention period (idempotent)."""
    from portal.ai.services import inference_images_purge

    return inference_images_purge()
