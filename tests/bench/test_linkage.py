"""The linkage benchmark still runs (with a few hundred records), so that it cannot rot."""

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
def test_bench_linkage_runs_prints_figures_and_drops_its_database():
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
    database = f"portal_bench_smoke_linkage_{os.getpid()}"

    result = subprocess.run(
        [sys.executable, str(BENCH / "linkage_1m.py"), "--records", "2000", "--database", database],
        env={**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]},
        capture_output=True, text=True, timeout=180, check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[2:]] == [
        "query", "linkage_match first page", "linkage_match all pages", "plain SQL join", "ratio",
    ]
    assert lines[1].startswith("built 6,000 records (2,000 in each of 3 societies) in ")
    assert lines[3].startswith("linkage_match first page: 100 matches in ")
    assert lines[6].startswith("ratio: all pages / plain join = ")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [database])
        assert cursor.fetchone()[0] == 0
