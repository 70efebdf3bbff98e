"""Checks behind /healthz: database, broker, storage and (when configured) a Celery worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    ms: float


def _timed(check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure
        detail = f"{type(exc).__name__}: {exc}"[:300]
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
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def check_storage() -> str:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as handle:
            if handle.read() != b"ok":
                raise OSError("read back different bytes")
    finally:
        default_storage.delete(name)
    return type(default_storage).__name__


def check_worker() -> str:
    from portal.celery import app

    replies = app.control.ping(timeout=2.0)
    if not replies:
        raise RuntimeError("no worker answered")
    return f"{len(replies)} worker(s)"


def run_checks() -> dict[str, CheckResult]:
    results = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "storage": _timed(check_storage),
    }
    if settings.PORTAL_HEALTH_CHECK_WORKER and not settings.CELERY_TASK_ALWAYS_EAGER:
        results["worker"] = _timed(check_worker)
    return results
