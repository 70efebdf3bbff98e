"""Read-side helpers of the anonymisation jobs: who sees which job, and a release's job report."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from portal.datasets.models import DatasetRelease
from portal.datasets.selectors import is_operator, managed_society_ids, may_manage_society
from portal.deid.models import DeidFileResult, DeidJob


def jobs_visible_to(user: Any) -> QuerySet[DeidJob]:
    """The jobs of the societies ``user`` administers (every job for the operator)."""
    jobs = DeidJob.objects.select_related("society", "dataset", "created_by")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return jobs.none()
    if is_operator(user):
        return jobs
    return jobs.filter(society_id__in=managed_society_ids(user))


def may_manage_job(user: Any, job: DeidJob) -> bool:
    return may_manage_society(user, job.society)


def job_results(job: DeidJob, *, status: str = "") -> QuerySet[DeidFileResult]:
    results = job.results.select_related("reviewed_by").order_by("source_path")
    return results.filter(status=status) if status in DeidFileResult.Status.values else results


def deid_report_for_release(release: DatasetRelease) -> dict[str, Any] | None:
    """The report of the anonymisation job a release was built from, or None.

    Shown on the release pages (management and catalogue): profile, options, table edition, counts
    of actions and of files by kind/status. The job is found by ``release.source_reference``
    (``deid-job-<id>``).
    """
    if release.source != DatasetRelease.Source.DEID_JOB:
        return None
    reference = release.source_reference or ""
    if not reference.startswith("deid-job-") or not reference[len("deid-job-"):].isdigit():
        return None
    job = DeidJob.objects.filter(pk=int(reference[len("deid-job-"):]), dataset_id=release.dataset_id).first()
    if job is None:
        return None
    return {"job_id": job.pk, "status": job.status, "total": job.total, "failed": job.failed,
            "held_back": job.held_back, **(job.report or {})}


def deid_reports_for_protocol(protocol: Any) -> list[tuple[DatasetRelease, dict[str, Any] | None]]:
    """Every release of the datasets resting on ``protocol``, with the report of the anonymisation
    job it was built from (None for imports): what the ethics committee is shown on the protocol."""
    releases = list(
        DatasetRelease.objects.filter(dataset__protocol=protocol)
        .select_related("dataset__society")
        .order_by("dataset__slug", "version")
    )
    prefix = "deid-job-"
    job_ids = {
        int(release.source_reference[len(prefix):])
        for release in releases
        if release.source == DatasetRelease.Source.DEID_JOB and release.source_reference.startswith(prefix)
        and release.source_reference[len(prefix):].isdigit()
    }
    jobs = {f"{prefix}{job.pk}": job for job in DeidJob.objects.filter(pk__in=job_ids)} if job_ids else {}
    rows: list[tuple[DatasetRelease, dict[str, Any] | None]] = []
    for release in releases:
        job = jobs.get(release.source_reference) if release.source == DatasetRelease.Source.DEID_JOB else None
        report = None
        if job is not None and job.dataset_id == release.dataset_id:
            report = {"job_id": job.pk, "status": job.status, "total": job.total, "failed": job.failed,
                      "held_back": job.held_back, **(job.report or {})}
        rows.append((release, report))
    return rows
