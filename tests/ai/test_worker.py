"""A real Celery worker, over the real broker, runs an inference job on the demo model and stores the
results (PostgreSQL, Redis, a separate worker process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from guardian.shortcuts import assign_perm

from portal.ai import services
from portal.ai.demo_models import synthetic_png
from portal.ai.models import RUN_PERMISSION, InferenceJob
from portal.celery import app
from tests.factories import SocietyFactory, UserFactory
from tests.factories.ai import AIModelFactory, published_version
from tests.project.test_celery_worker import (
    PROJECT_DIR,
    STARTUP_SECONDS,
    _delete_queue,
    _test_database_url,
)
from tests.support.ci import require

pytestmark = pytest.mark.worker


def _start(queue: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    node = f"portal-ai-{uuid.uuid4().hex[:10]}@localhost"
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
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_worker_runs_a_job_on_the_demo_model(transactional_db, settings, tmp_path):
    require(bool(os.environ.get("CELERY_BROKER_URL")), "CELERY_BROKER_URL is not set")
    from django.db import connection

    require(connection.vendor == "postgresql", "the worker test needs PostgreSQL (DATABASE_URL)")
    data_dir = tmp_path / "data"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": data_dir / "files"}}}
    queue = f"portal-test-ai-{uuid.uuid4().hex[:10]}"
    settings.PORTAL_AI_QUEUE = queue
    settings.PORTAL_AI_BATCH_SIZE = 2
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "PORTAL_DATA_DIR": str(data_dir),
           "PORTAL_AI_BATCH_SIZE": "2"}
    version = published_version(AIModelFactory(society=SocietyFactory(slug="jges"), slug="demo-endoscopy-organ"))
    user = UserFactory()
    assign_perm(RUN_PERMISSION, user, version.model)
    labels = ["esophagus", "stomach", "duodenum", "stomach", "esophagus"]
    uploads = [SimpleUploadedFile(f"{n}.png", synthetic_png("endoscopy-organ", label, 500 + n))
               for n, label in enumerate(labels)]
    uploads.append(SimpleUploadedFile("notes.txt", b"not an image"))
    process = None
    try:
        process = _start(queue, env, tmp_path / "worker.log")
        job = services.inference_job_create(version=version, user=user, uploads=uploads)
        deadline = time.monotonic() + 120
        while InferenceJob.objects.get(pk=job.pk).is_active:
            if time.monotonic() > deadline:
                pytest.fail("the job did not finish:\n" + (tmp_path / "worker.log").read_text(errors="replace"))
            time.sleep(0.2)
    finally:
        if process is not None:
            _stop(process)
        _delete_queue(queue)
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("finished_with_failures", 6, 6, 1)
    items = list(job.items.order_by("position"))
    assert [i.status for i in items] == ["succeeded"] * 5 + ["failed"]
    assert sum(i.label == label for i, label in zip(items, labels, strict=False)) >= 4
    for item in items[:5]:
        assert (data_dir / "files" / item.thumbnail_key).is_file()
        assert sum(item.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
