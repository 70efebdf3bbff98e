"""Checks behind /healthz: database, broker, storage and (when configured) a Celery worker.

/healthz answers anyone (load balancers and uptime monitors do not sign in), so a failed check
reports only the kind of error; the full message, which may name hosts and buckets, goes to the log.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection

from portal.celery import app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    ms: float


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # a health check reports every failure rather than raising it
        logger.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
        detail = type(exc).__name__
        ok = False
    return CheckResult(ok, detail, round((time.perf_counter() - started) * 1000, 1))


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "in-process (no broker configured)"
    # A fresh connection rather than the app's pool: the pool keeps the URL it was created with.
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        return str(conn.transport_cls)


def check_storage() -> str:
    # Looked up on every call (not the import-time `default_storage`) so that the check always
    # exercises the storage currently configured.
    storage = storages["default"]
    name = storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with storage.open(name) as handle:
            if handle.read() != b"ok":
                raise OSError("read back different bytes")
    finally:
        storage.delete(name)
    return type(storage).__name__


def check_worker() -> str:
    with app.connection_for_write() as conn:
        replies = app.control.ping(timeout=2.0, connection=conn)
    if not replies:
        raise RuntimeError("no worker answered")
    return f"{len(replies)} worker(s)"


def run_checks() -> dict[str, CheckResult]:
    results = {
        "database": _timed("database", check_database),
        "broker": _timed("broker", check_broker),
        "storage": _timed("storage", check_storage),
    }
    if settings.PORTAL_HEALTH_CHECK_WORKER and not settings.CELERY_TASK_ALWAYS_EAGER:
        if results["broker"].ok:
            results["worker"] = _timed("worker", check_worker)
        else:
            # Without a broker no worker can be reached; asking would only wait for timeouts.
            results["worker"] = CheckResult(False, "broker unavailable", 0.0)
    return results
