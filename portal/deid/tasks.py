"""Celery tasks of the anonymisation jobs.

``deid.process_chunk`` de-identifies a list of a job's files; it is idempotent (each output key and
result row derive from the source path, so a repeated chunk overwrites) and acknowledged late
(``CELERY_TASK_ACKS_LATE``), so a chunk whose worker dies is delivered again. ``deid.resume_stalled``
(for the beat schedule) re-queues the files without a result of jobs that have made no progress for
``PORTAL_DEID_STALL_MINUTES`` (default 30).

``PORTAL_DEID_TEST_FILE_DELAY`` (environment, seconds; tests only) slows each file so that a test
can kill the worker in the middle of a job.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

CHUNK_TIME_LIMIT = 60 * 60
CHUNK_SOFT_TIME_LIMIT = CHUNK_TIME_LIMIT - 120


@shared_task(name="deid.process_chunk", acks_late=True, time_limit=CHUNK_TIME_LIMIT,
             soft_time_limit=CHUNK_SOFT_TIME_LIMIT)
def process_chunk(job_id: int, paths: list[str]) -> dict[str, int]:
    from portal.deid.models import DeidJob
    from portal.deid.services import (
        deid_job_finish_if_complete,
        deid_process_file,
        job_profile,
        portal_keys,
    )

    job = DeidJob.objects.filter(pk=job_id).first()
    if job is None or job.status != DeidJob.Status.RUNNING:
        return {"processed": 0}
    profile, keys = job_profile(job), portal_keys()
    delay = float(os.environ.get("PORTAL_DEID_TEST_FILE_DELAY", "0") or 0)
    processed = 0
    for relative in paths:
        if DeidJob.objects.filter(pk=job_id, status=DeidJob.Status.RUNNING).count() == 0:
            break  # cancelled meanwhile
        if delay:
            time.sleep(delay)
        deid_process_file(job=job, relative=relative, profile=profile, keys=keys)
        processed += 1
    deid_job_finish_if_complete(job_id=job_id)
    return {"processed": processed}


@shared_task(name="deid.resume_stalled")
def resume_stalled() -> int:
    """Re-queue the missing files of running jobs whose results stopped coming in."""
    from django.db.models import Max

    from portal.deid.models import DeidJob
    from portal.deid.services import deid_job_resume

    minutes = int(getattr(settings, "PORTAL_DEID_STALL_MINUTES", 30))
    cutoff = timezone.now() - timedelta(minutes=minutes)
    resumed = 0
    jobs = DeidJob.objects.filter(status=DeidJob.Status.RUNNING, started_at__lt=cutoff).annotate(
        last=Max("results__processed_at")
    )
    for job in jobs:
        if job.last is None or job.last < cutoff:
            try:
                deid_job_resume(job=job, by=None)
                resumed += 1
            except Exception:  # one job's trouble must not stop the others
                logger.exception("Could not resume anonymisation job %s", job.pk)
    return resumed
