"""A job whose worker is killed mid-way finishes, after a resume on another worker, with exactly one
result per file and every output present (real broker, real worker processes, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from portal.celery import app
from portal.deid import services
from portal.deid.models import DeidFileResult, DeidJob
from portal.lib.synthetic import synthetic_file
from tests.factories.datasets import DatasetFactory
from tests.project.test_celery_worker import (
    PROJECT_DIR,
    STARTUP_SECONDS,
    _delete_queue,
    _test_database_url,
)
from tests.support.ci import require

pytestmark = pytest.mark.worker

FILES = 8


def _start(queue: str, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    node = f"portal-deid-{uuid.uuid4().hex[:10]}@localhost"
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--concurrency=1", "-l", "info",
        "-n", node, "-Q", queue, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not app.control.ping(destination=[node], timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the worker did not answer:\n" + log_path.read_text(errors="replace"))
    return process, node


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_killed_worker_then_resume_gives_one_result_per_file(transactional_db, settings, tmp_path, monkeypatch,
                                                             society, society_admin):
    require(bool(os.environ.get("CELERY_BROKER_URL")), "CELERY_BROKER_URL is not set")
    from django.db import connection

    require(connection.vendor == "postgresql", "the worker test needs PostgreSQL (DATABASE_URL)")
    data_dir = tmp_path / "data"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": data_dir / "files"}}}
    import_root = tmp_path / "import"
    for n in range(FILES):
        path = import_root / "batch" / f"P-{n:04d}" / f"{n}.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(synthetic_file("endoscopy", seed=n, study_date=date(2024, 1, 1), subject="X")[0])
    settings.PORTAL_DEID_IMPORT_ROOT = str(import_root)
    queue = f"portal-test-deid-{uuid.uuid4().hex[:10]}"
    settings.PORTAL_DEID_QUEUE = queue
    monkeypatch.setattr(services, "CHUNK_SIZE", 4)
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "PORTAL_DATA_DIR": str(data_dir),
           "PORTAL_PSEUDONYM_KEY": settings.PORTAL_PSEUDONYM_KEY, "PORTAL_DEID_TEST_FILE_DELAY": "1"}
    log_path = tmp_path / "worker.log"
    first, second = None, None
    try:
        first, _node = _start(queue, env, log_path)
        dataset = DatasetFactory(society=society, modality="endoscopy")
        job = services.deid_job_create(society=society, dataset=dataset, source_kind="server_folder",
                                       source="batch", institution_code="1310001", by=society_admin)
        services.deid_job_start(job=job, by=society_admin)
        _wait(lambda: DeidFileResult.objects.filter(job=job).count() >= 2, 60, "the first results")
        os.kill(first.pid, signal.SIGKILL)  # the worker dies in the middle of its chunk
        first.wait(timeout=10)
        done_before = DeidFileResult.objects.filter(job=job).count()
        assert 2 <= done_before < FILES
        assert DeidJob.objects.get(pk=job.pk).status == "running"

        # Resumed before another worker runs: the files of the unfinished chunks are queued again, while
        # the second chunk's message still waits in the queue, so some files are processed twice.
        missing = services.deid_job_resume(job=job, by=society_admin)
        assert missing == FILES - done_before
        env["PORTAL_DEID_TEST_FILE_DELAY"] = "0"
        second, _node = _start(queue, env, log_path)
        _wait(lambda: DeidJob.objects.get(pk=job.pk).status != "running", 120, "the job to finish")
    finally:
        for process in (first, second):
            if process is not None:
                _stop(process)
        _delete_queue(queue)

    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("finished", FILES, FILES, 0)
    results = list(DeidFileResult.objects.filter(job=job).order_by("source_path"))
    assert [r.source_path for r in results] == [f"P-{n:04d}/{n}.jpg" for n in range(FILES)]
    for result in results:
        assert result.storage_key == services.output_key(job, result.source_path)
        assert default_storage.exists(result.storage_key)
        assert default_storage.size(result.storage_key) == result.size
    stored = sorted((data_dir / "files" / "deid" / str(job.pk)).iterdir())
    assert len(stored) == FILES  # no duplicate objects ("name_abc123.jpg") from an overwrite
