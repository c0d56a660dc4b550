"""kill -9 at random moments on both hubs: the head always loads and the next run resumes from it.

A short run of ``bench/crash.py`` (2 seeded trials on the local hub, 1 on the fake Hugging Face Hub, whose
trials take twice as long; the script's default is 20); see that script for what each trial does and checks.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind,trials", [("local", 2), ("hf", 1)])
def test_sigkill_at_random_moments(kind, trials, tmp_path, bench_script):
    crash = bench_script("crash")
    said: list[str] = []
    summary = crash.run_trials(kind, trials=trials, seed=1234, work=tmp_path / kind, say=said.append, max_delay=3.0,
                               cycles=4)
    report = crash.table([summary]) + "\n" + "\n".join(said)
    assert summary.trials == trials, report
    assert not summary.failures, report + "\n" + "\n".join(summary.failures)
