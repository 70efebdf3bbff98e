"""A real Celery worker, over the real broker, on the test database.

The worker is a separate process, so the events it reads must be committed (``transactional_db``)
and it must be pointed at the test database rather than the one named in DATABASE_URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from kombu import Exchange, Queue

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from portal.audit.tasks import verify_chain_task
from portal.celery import app
from tests.support.ci import require

pytestmark = pytest.mark.worker

PROJECT_DIR = Path(settings.BASE_DIR)
STARTUP_SECONDS = 60


def _test_database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def worker(transactional_db, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Start a worker on its own queue; yield its node name and queue; always stop it."""
    require(bool(os.environ.get("CELERY_BROKER_URL")), "CELERY_BROKER_URL is not set")
    require(connection.vendor == "postgresql", "the worker test needs PostgreSQL (DATABASE_URL)")

    # A queue and node name of its own, so that test runs sharing the broker never take each
    # other's tasks, and a stray message left by an earlier run cannot reach this database.
    suffix = uuid.uuid4().hex[:12]
    queue = f"portal-test-{suffix}"
    node = f"portal-test-{suffix}@localhost"
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    log_path = tmp_path / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker",
        "--pool=solo", "--concurrency=1", "-l", "info",
        "-n", node, "-Q", queue, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not app.control.ping(destination=[node], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the worker did not answer (exit code {process.poll()}):\n"
                    + log_path.read_text(errors="replace")
                )
        yield node, queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _delete_queue(queue)


def _delete_queue(name: str) -> None:
    """Remove the test queue and its bindings from the broker (Redis keeps them otherwise)."""
    with app.connection_for_write() as conn:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(conn.default_channel)
        queue.declare()
        queue.delete()


def test_worker_verifies_audit_chain_written_by_the_portal(worker):
    _node, queue = worker
    for number in range(3):
        audit_record(
            action="tests.worker_probe",
            actor=None,
            actor_email="worker-test@example.jp",
            details={"number": number},
        )
    assert AuditEvent.objects.count() == 3

    async_result = verify_chain_task.apply_async(queue=queue)
    result = async_result.get(timeout=60)
    async_result.forget()

    assert result == {"checked": 3, "ok": True, "bad_event_id": None, "problem": ""}


def test_healthz_reports_the_running_worker(worker, client):
    with override_settings(PORTAL_HEALTH_CHECK_WORKER=True, CELERY_TASK_ALWAYS_EAGER=False):
        response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage", "worker"}
    assert body["checks"]["worker"]["ok"] is True
    assert body["checks"]["worker"]["detail"].endswith("worker(s)")
