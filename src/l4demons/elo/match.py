"""Matches between two players, game by game in parallel worker processes.

Each game starts from an opening; openings are used in pairs, player A
white in the first game and black in the second. The games are played by
a :class:`~l4demons.elo.pool.GamePool` (one of the caller's, or a new one
for the match); how one game goes is :mod:`l4demons.elo.game`.
Scheduling stops at a deadline or when ``should_stop`` says so; games
already running are finished, never cut.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence

from l4demons.atomic import atomic_write
from l4demons.elo.game import DEFAULT_MAX_PLIES, GameJob, GameRecord, Thinking
from l4demons.elo.openings import Opening
from l4demons.elo.players import PlayerSpec
from l4demons.elo.pool import GamePool, borrowed_or_new, default_workers

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """All games of a match, scored from player A's side."""

    a: str
    b: str
    records: tuple[GameRecord, ...]
    seconds: float
    """Wall time of the whole match."""

    @property
    def wins(self) -> int:
        return sum(r.score_a == 1.0 for r in self.records)

    @property
    def draws(self) -> int:
        return sum(r.score_a == 0.5 for r in self.records)

    @property
    def losses(self) -> int:
        return sum(r.score_a == 0.0 for r in self.records)

    @property
    def games(self) -> int:
        return len(self.records)

    @property
    def score(self) -> float:
        """A's mean points per game (0.5 with no games)."""
        return (self.wins + 0.5 * self.draws) / self.games if self.records else 0.5

    @property
    def pgns(self) -> tuple[str, ...]:
        return tuple(r.pgn for r in self.records)

    def thinking(self, player: str = "a") -> Thinking:
        """What player ``a`` or ``b`` spent on its moves over the whole match."""
        side = {"a": 0, "b": 1}[player]
        return sum((r.thinking[side] for r in self.records), Thinking())


Tally = tuple[int, int, int]
"""(wins, draws, losses) of player A so far."""


def schedule(a: PlayerSpec, b: PlayerSpec, openings: Sequence[Opening], games: int, *,
             max_plies: int = DEFAULT_MAX_PLIES, seed: int = 0, event: str = "l4demons elo",
             adjudicate_material: int = 0) -> list[GameJob]:
    """Games in order: opening k is played by games 2k (A white) and 2k+1 (A black)."""
    if not openings:
        raise ValueError("a match needs at least one opening")
    return [
        GameJob(i, a, b, i % 2 == 0, openings[(i // 2) % len(openings)], max_plies, seed * 1_000_003 + i, event,
                adjudicate_material)
        for i in range(games)
    ]


def play_match(
    a: PlayerSpec,
    b: PlayerSpec,
    openings: Sequence[Opening],
    games: int | None = None,
    *,
    max_plies: int = DEFAULT_MAX_PLIES,
    workers: int | None = None,
    time_budget_s: float | None = None,
    should_stop: Callable[[Tally], bool] | None = None,
    on_game: Callable[[GameRecord], None] | None = None,
    seed: int = 0,
    event: str = "l4demons elo",
    pool: GamePool | None = None,
    expected_game_s: float = 0.0,
    adjudicate_material: int = 0,
) -> MatchResult:
    """Play up to ``games`` games (default: each opening twice) between A and B.

    ``workers`` defaults to one per core (at most one per game); 0 plays in
    this process. With ``time_budget_s``, no game starts once the time
    left is shorter than the longest game so far, so the match ends within
    its budget unless a game runs longer than all before it. ``should_stop(tally)`` is
    asked after every finished game; games already running still count. A
    ``pool`` of the caller's is used as is (and left open): no processes start.
    ``expected_game_s``: how long a game probably takes (see :func:`time_for_another`).
    """
    jobs = schedule(a, b, openings, 2 * len(openings) if games is None else games,
                    max_plies=max_plies, seed=seed, event=event, adjudicate_material=adjudicate_material)
    started = time.monotonic()
    deadline = None if time_budget_s is None else started + time_budget_s
    records: list[GameRecord] = []
    tally = [0, 0, 0]
    stop = False
    n_workers = default_workers(len(jobs)) if workers is None else min(workers, len(jobs))
    with borrowed_or_new(pool, n_workers) as pool:
        pending: set[cf.Future[GameRecord]] = set()
        queue = list(jobs)
        while queue or pending:
            while (queue and len(pending) < pool.slots and not stop
                   and time_for_another(records, deadline, expected_game_s)):
                pending.add(pool.submit(queue.pop(0)))
            if not pending:
                break
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                record = future.result()
                records.append(record)
                tally[{1.0: 0, 0.5: 1, 0.0: 2}[record.score_a]] += 1
                if on_game is not None:
                    on_game(record)
                if should_stop is not None and should_stop((tally[0], tally[1], tally[2])):
                    stop = True
    records.sort(key=lambda r: r.index)
    result = MatchResult(a.name, b.name, tuple(records), time.monotonic() - started)
    log.debug("%s vs %s: +%d =%d -%d in %.1fs", a.name, b.name, result.wins, result.draws,
             result.losses, result.seconds)
    return result


def time_for_another(records: Sequence[GameRecord], deadline: float | None, expected_s: float = 0.0,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether a game as long as the longest so far (or ``expected_s``) still fits before ``deadline``.

    The longest, not the mean: a game started just in time by the mean
    overruns the budget half the time. Before any game has finished only
    the caller's ``expected_s`` (say, games of earlier calls) is known;
    without it the first wave always starts.
    """
    if deadline is None:
        return True
    longest = max((r.seconds for r in records), default=expected_s)
    return clock() + max(longest, expected_s) <= deadline


def write_pgn(path: str | os.PathLike[str], pgns: Sequence[str]) -> None:
    """Write games to ``path`` atomically (``.tmp`` then rename)."""
    atomic_write(path, "\n\n".join(pgns) + ("\n" if pgns else ""))
