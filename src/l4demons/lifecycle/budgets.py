"""How much each cycle does: backprop steps, the replay window's size, the Elo estimate's share of time.

- **Steps follow the data** (KataGo's sample reuse): the learner draws each
  training position about ``sample_reuse`` times on average over the run.
  The trainer keeps two counters, positions generated and samples drawn
  (over every rank), and each cycle takes the steps that bring the samples
  up to ``sample_reuse x positions``: a cycle with few new games trains
  little, a cycle after a restart or a merge catches up, and under DDP the
  whole job's reuse, not each rank's, follows the target.
- **The window grows with the data seen** (KataGo's shuffle window):
  everything while fewer than ``c`` positions exist, then
  ``c * (1 + beta * ((n / c) ** alpha - 1) / alpha)``: sub-linear, so early
  random-play positions leave it as the games get better, yet a long run
  still trains on far more than its last few cycles.
- **Elo costs a share, not a fixed time**: the estimate's budget is a
  fraction of the rest of the cycle (see :func:`elo_budget_seconds`).
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """The replay window's size as a function of the positions generated so far."""

    min_positions: int = 25_000
    """Below this many positions generated the window holds them all (KataGo's ``c``)."""
    alpha: float = 0.75
    """Growth exponent of the window past its minimum (KataGo: 0.75)."""
    beta: float = 0.4
    """Growth rate of the window past its minimum (KataGo: 0.4)."""
    max_positions: int = 500_000
    """Most positions the window holds (memory: about 150 bytes a position)."""

    def __post_init__(self) -> None:
        if self.min_positions < 1 or self.max_positions < self.min_positions:
            raise ValueError("the replay window needs 1 <= min positions <= max positions")
        if not 0 < self.alpha <= 1 or self.beta < 0:
            raise ValueError("window growth needs 0 < alpha <= 1 and beta >= 0")


def window_size(positions_seen: int, cfg: WindowConfig) -> int:
    """Training positions the window keeps after ``positions_seen`` have been generated."""
    c = cfg.min_positions
    if positions_seen <= c:
        return c
    grown = c * (1.0 + cfg.beta * ((positions_seen / c) ** cfg.alpha - 1.0) / cfg.alpha)
    return min(cfg.max_positions, int(grown))


def steps_for_cycle(positions_seen: int, samples_drawn: int, sample_reuse: float, batch_size: int,
                    world_size: int = 1, max_steps: int | None = None) -> int:
    """Backprop steps (per rank) that bring samples drawn up to ``sample_reuse x positions_seen``.

    ``batch_size`` is per rank: one step draws ``batch_size * world_size``
    samples over the job.
    """
    owed = sample_reuse * positions_seen - samples_drawn
    per_step = batch_size * world_size
    steps = max(0, math.ceil(owed / per_step - 1e-9))
    return steps if max_steps is None else min(steps, max_steps)


def elo_budget_seconds(share: float, other_seconds: float, floor: float = 0.0) -> float:
    """Seconds for the Elo estimate so that it takes ``share`` of the whole cycle.

    ``other_seconds`` is the rest of the cycle (self-play, backprop, commit).
    """
    if share <= 0:
        return 0.0
    return max(floor, other_seconds * share / (1.0 - share))
