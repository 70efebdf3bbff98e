"""The anonymisation benchmark still runs (with a few files), so that it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_bench_deid_runs_and_prints_rates_and_the_ratio():
    result = subprocess.run(
        [sys.executable, str(BENCH / "deid_2000.py"), "--files", "5"],
        capture_output=True, text=True, timeout=180, check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "generated 5 files in " + lines[0].removeprefix("generated 5 files in ")
    assert lines[1].startswith("(a) pydicom read+write, unchanged") and "files/s" in lines[1]
    assert lines[2].startswith("(b) portal deidentify_dicom, Basic") and "files/s" in lines[2]
    assert lines[-1].startswith("ratio portal / pydicom: ")
    assert float(lines[-1].rsplit(" ", 1)[1]) > 0
