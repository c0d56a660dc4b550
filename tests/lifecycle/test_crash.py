"""kill -9 at random moments on both hubs: the head always loads and the next run resumes from it.

A short run of ``bench/crash.py`` (5 seeded trials on the local hub, 3 on the fake Hugging Face Hub, whose
trials take twice as long; the script's default is 20); see that script for what each trial does and checks.
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


@pytest.mark.parametrize("kind,trials", [("local", 5), ("hf", 3)])
def test_sigkill_at_random_moments(kind, trials, tmp_path):
    said: list[str] = []
    summary = crash.run_trials(kind, trials=trials, seed=1234, work=tmp_path / kind, say=said.append, max_delay=3.0,
                               cycles=4)
    report = crash.table([summary]) + "\n" + "\n".join(said)
    assert summary.trials == trials, report
    assert not summary.failures, report + "\n" + "\n".join(summary.failures)
