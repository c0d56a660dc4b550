"""``bench/scale.py`` runs end to end on a tiny budget and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_scale_prints_its_table():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--net", "tiny", "--games", "4", "--max-plies", "10",
         "--workers", "1", "--repeats", "1", "--steps", "4", "--batch-size", "32"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\| 1 worker \(in-process, as the pool plays it\) \| [\d,]+ \| [\d.]+ \| 1\.00x \|$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\| learner / raw \| \*\*\d+\.\d\d\*\* ", proc.stdout, re.M), proc.stdout
