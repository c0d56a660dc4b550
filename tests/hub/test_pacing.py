"""The commit pacer: a token bucket on a clock the test drives."""

from __future__ import annotations

import pytest

from l4demons.hub.pacing import CommitPacer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def attempts_in(pacer: CommitPacer, clock: Clock, seconds: float, step: float) -> list[float]:
    """A trainer that tries to commit every ``step`` seconds: when it was let through."""
    made = []
    end = clock.now + seconds
    while clock.now < end:
        if pacer.ready():
            pacer.take()
            made.append(clock.now)
        clock.now += step
    return made


def test_a_fast_trainer_gets_burst_then_one_per_interval() -> None:
    clock = Clock()
    pacer = CommitPacer(60.0, burst=2, clock=clock)
    made = attempts_in(pacer, clock, 3600, 5)
    assert made[:2] == [0.0, 5.0]  # the burst
    assert len(made) <= 2 + 3600 / 60
    for window_start in range(0, 3600, 5):  # over any hour-long window (here: any 600 s), burst + 600/60
        assert sum(window_start <= t < window_start + 600 for t in made) <= 2 + 600 / 60


def test_wait_says_when_the_next_token_comes() -> None:
    clock = Clock()
    pacer = CommitPacer(100.0, burst=1, clock=clock)
    pacer.take()
    assert pacer.wait() == pytest.approx(100.0)
    clock.now = 40
    assert pacer.wait() == pytest.approx(60.0) and not pacer.ready()
    clock.now = 100
    assert pacer.ready()


def test_hold_keeps_it_closed_as_long_as_the_hub_asked() -> None:
    clock = Clock()
    pacer = CommitPacer(10.0, burst=3, clock=clock)
    pacer.hold(300)
    assert pacer.wait() == pytest.approx(300.0)
    clock.now = 299
    assert not pacer.ready()
    clock.now = 300
    assert pacer.ready()


def test_no_interval_never_waits_but_still_honours_a_hold() -> None:
    clock = Clock()
    pacer = CommitPacer(0.0, clock=clock)
    for _ in range(100):
        assert pacer.ready()
        pacer.take()
    pacer.hold(5)
    assert pacer.wait() == pytest.approx(5.0)


def test_a_final_commit_without_a_token_is_a_debt() -> None:
    clock = Clock()
    pacer = CommitPacer(10.0, burst=1, clock=clock)
    pacer.take()
    pacer.take()  # went anyway (end of run)
    assert pacer.wait() == pytest.approx(20.0)
