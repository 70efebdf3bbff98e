"""The AI inference benchmark still runs (with a handful of images), so that it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_bench_ai_inference_runs_both_models_and_prints_the_ratios():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, str(BENCH / "ai_inference.py"), "--images", "8", "--batch-size", "4", "--repeat", "2"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("demo: trained the endoscopy demo model and wrote 8 PNGs in ")
    for model, size in (("demo", 64), ("conv", 224)):
        block = [line for line in lines if line.startswith(model)]
        assert block[-8] == f"{model}: 8 images, batch 4, input {size}x{size}"
        assert [re.sub(r"[\d.]+", "#", " ".join(line.split())) for line in block[-7:]] == [
            f"{model} (a) portal inference path: # images/s",
            f"{model} (b) bare ONNX Runtime loop: # images/s",
            f"{model} (c) naive sequential script: # images/s",
            f"{model} (d) portal path, preprocessed: # images/s",
            f"{model} ratio (d)/(b): # (median of # rounds, #-#)",
            f"{model} ratio (a)/(b): # (median of # rounds, #-#)",
            f"{model} ratio (a)/(c): # (median of # rounds, #-#)",
        ]
