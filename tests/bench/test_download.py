"""The download benchmark still runs (with small files), so that it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.support.ci import require

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.django_db
def test_bench_download_runs_prints_rates_and_memory_and_drops_its_database():
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
    database = f"portal_bench_smoke_download_{os.getpid()}"

    result = subprocess.run(
        [sys.executable, str(BENCH / "download_1g.py"), "--size-mib", "4", "--small-mib", "1",
         "--database", database],
        env={**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]},
        capture_output=True, text=True, timeout=300, check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("small.bin", "large.bin"))}
    assert [rows[name][1] for name in ("small.bin", "large.bin")] == ["1", "4"]
    assert all(float(value) > 0 for row in rows.values() for value in row[2:])
    assert lines[-1].startswith("portal worker's peak RSS grew by ")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [database])
        assert cursor.fetchone()[0] == 0
