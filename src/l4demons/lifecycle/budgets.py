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
- **Self-play lasts a span of time** (:func:`another_round`): rounds of
  ``--games`` games until ``--cycle-seconds``, so a GPU's 2-second rounds
  make 10-second cycles whose weights reload, replay chunk and commit stay
  a small share, while a CPU's one round of 9 seconds stays one round.
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


def steps_for_cycle(positions_seen: int, samples_drawn: int, sample_reuse: float, batch_size: float,
                    world_size: int = 1, max_steps: int | None = None) -> int:
    """Backprop steps (per rank) that bring samples drawn up to ``sample_reuse x positions_seen``.

    ``batch_size`` is the self-play rows of one rank's batch (fewer than the
    batch while a warm start's teacher rows fill a share of it): one step
    draws ``batch_size * world_size`` self-play samples over the job.
    """
    owed = sample_reuse * positions_seen - samples_drawn
    per_step = batch_size * world_size
    steps = max(0, math.ceil(owed / per_step - 1e-9))
    return steps if max_steps is None else min(steps, max_steps)


def another_round(elapsed: float, round_seconds: float, target: float) -> bool:
    """Whether self-play starts another round of games: it has lasted ``elapsed`` seconds, its rounds about
    ``round_seconds`` each, and it should last ``target``; none that would probably end more than a quarter
    past ``target``."""
    return elapsed < target and elapsed + round_seconds <= 1.25 * target
