"""How often a trainer may commit: a token bucket, so that a fast trainer stays under a hub's rate limit.

The Hugging Face Hub allows about 128 commits an hour per repository,
shared by every trainer on it and counting every attempt (a merge retry
too). A trainer whose cycles take seconds would spend that in minutes. So
every commit attempt takes a token; tokens come back one per ``interval``
seconds, up to ``burst`` of them (the first commit of a run, and a merge
retry right after a conflict, need not wait). Without a token the cycle
waits on disk and is folded into the next commit (see
:mod:`l4demons.lifecycle.commit`). Over any window of T seconds a trainer
makes at most ``burst + T / interval`` attempts.

A hub that answered "too many requests, come back in N seconds" holds the
bucket empty until then (:meth:`CommitPacer.hold`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_HF_INTERVAL = 180.0
"""Seconds per commit on the Hugging Face Hub: 20 an hour, with merge retries well under its limit of 128."""


class CommitPacer:
    """A token bucket of commit attempts.

    :param interval: seconds for one token to come back (0: no pacing at all).
    :param burst: most tokens held.
    :param clock: monotonic seconds (tests may pass their own).
    """

    def __init__(self, interval: float, burst: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        if interval < 0 or burst < 1:
            raise ValueError(f"commit interval must be >= 0 and burst >= 1 (got {interval}, {burst})")
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._held_until = 0.0

    def _refill(self) -> float:
        now = self._clock()
        if self.interval > 0:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now
        return now

    def ready(self) -> bool:
        """Whether an attempt may go now."""
        return self.wait() == 0.0

    def wait(self) -> float:
        """Seconds until an attempt may go (0: now)."""
        if self.interval == 0 and self._held_until <= self._clock():
            return 0.0
        now = self._refill()
        held = max(0.0, self._held_until - now)
        short = 0.0 if self._tokens >= 1 else (1 - self._tokens) * self.interval
        return max(held, short)

    def take(self) -> None:
        """Count one attempt (made whether or not a token was there: a final commit does not wait)."""
        self._refill()
        if self.interval > 0:
            self._tokens -= 1

    def hold(self, seconds: float) -> None:
        """No attempt for ``seconds`` (the hub asked), and the bucket starts empty after that."""
        now = self._refill()
        self._held_until = max(self._held_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)
