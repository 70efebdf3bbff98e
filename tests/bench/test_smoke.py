"""The audit benchmarks still run (with a handful of events), so that they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.support.ci import require

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
    database = f"portal_bench_smoke_{Path(script).stem}_{os.getpid()}"
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--database", database],
        env={**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def database_exists(name_prefix: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
            [f"{name_prefix}%_{os.getpid()}"],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
def test_bench_audit_append_runs_and_drops_its_database():
    result = run_bench("audit_append.py", "--events", "30")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == [
        "events",
        "audit_record",
        "plain INSERT",
        "ratio",
        "chain after bench",
    ]
    assert lines[-1] == "chain after bench: 51 events, intact"
    assert not database_exists("portal_bench_smoke_audit_append")


@pytest.mark.django_db
def test_bench_audit_verify_runs_and_drops_its_database():
    result = run_bench("audit_verify_1m.py", "--events", "500", "--chunk-size", "100")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("built a chain of 500 events in ")
    assert lines[2].startswith("verify_chain:  500 events in ")
    assert lines[2].endswith(" events/s")
    assert not database_exists("portal_bench_smoke_audit_verify_1m")


def test_bench_refuses_sqlite(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH / "audit_verify_1m.py"), "--events", "1"],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
