"""kill -9 at random moments on both hubs: the head always loads and the next run resumes from it.

A short run of ``bench/crash.py`` (5 seeded trials per hub; the script's
default is 20); see that script for what each trial does and checks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_SPEC = importlib.util.spec_from_file_location("l4d_bench_crash", Path(__file__).resolve().parents[2] / "bench" / "crash.py")
crash = sys.modules[_SPEC.name] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(crash)


@pytest.mark.parametrize("kind", ["local", "hf"])
def test_sigkill_at_random_moments(kind, tmp_path):
    said: list[str] = []
    summary = crash.run_trials(kind, trials=5, seed=1234, work=tmp_path / kind, say=said.append, max_delay=3.0, cycles=4)
    report = crash.table([summary]) + "\n" + "\n".join(said)
    assert summary.trials == 5, report
    assert not summary.failures, report + "\n" + "\n".join(summary.failures)
