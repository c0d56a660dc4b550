"""A candidate's Elo against the anchors: the quick per-cycle estimate and the full measurement.

Both play the candidate against the anchors nearest its current estimate
and refit after every game (an adaptive gauntlet): a game against an
opponent of equal strength says the most about a rating, one against an
opponent 800 points away almost nothing. The estimate starts from a prior
(last cycle's Elo) or the weakest anchor and walks up as the candidate
wins. Games against an anchor come in pairs from one opening, one with
each colour. The quick estimate stops at a time or game budget; the full
one at a game count and writes every game to a PGN file.

The per-cycle estimate pools: consecutive nets differ little, so the games
of earlier cycles, their counts decayed by the caller each cycle, enter the
fit beside this cycle's games (``pool``). Few new games then give a tight
interval, and the decay lets the estimate follow a net that improves.

The interval adds the anchors' own calibration error (weighted by how much
each anchor's games inform the fit) to the fit's statistical error.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence

from l4demons.elo.anchors import Anchor, AnchorSet, load_anchors, performance
from l4demons.elo.errors import BadTimeControl
from l4demons.elo.game import DEFAULT_MAX_PLIES, GameJob, GameRecord
from l4demons.elo.match import time_for_another, write_pgn
from l4demons.elo.openings import MAX_OPENINGS, load_openings
from l4demons.elo.players import PlayerSpec
from l4demons.elo.pool import GamePool, borrowed_or_new, default_workers
from l4demons.elo.rating import Z95, EloInterval, expected_score, fit_one

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OpponentResult:
    """The candidate's games against one anchor."""

    name: str
    elo: float
    """The anchor's rating."""
    wins: int
    draws: int
    losses: int
    performance: EloInterval
    """Rating the candidate showed in these games alone."""

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        return (self.wins + self.draws / 2) / self.games if self.games else 0.5


@dataclasses.dataclass(frozen=True)
class EloEstimate:
    """A measured rating: every number here came from games played."""

    candidate: str
    elo: float
    lo: float
    """Lower end of the 95% interval."""
    hi: float
    games: int
    seconds: float
    per_opponent: tuple[OpponentResult, ...]
    pgn_path: str | None = None
    pooled_games: float = 0.0
    """Games of earlier cycles (decayed counts) in the fit besides this call's own."""
    longest_game_s: float = 0.0
    """The longest of this call's games, in seconds (what the next call may expect)."""

    def tally(self) -> dict[str, list[float]]:
        """This call's own games per anchor, ``{name: [wins, draws, losses]}`` (to pool into later estimates)."""
        return {row.name: [row.wins, row.draws, row.losses] for row in self.per_opponent}

    @property
    def error(self) -> float:
        return max(self.hi - self.elo, self.elo - self.lo)

    @property
    def label(self) -> str:
        """For the commit message: ``Elo ~412``."""
        return f"Elo ~{self.elo:.0f}"

    def as_metrics(self) -> dict[str, float | int | None]:
        """The fields the lifecycle writes into ``metrics.jsonl`` (None where no games gave a number)."""

        def num(x: float) -> float | None:
            return round(x, 1) if math.isfinite(x) else None

        return {"elo": num(self.elo), "elo_lo": num(self.lo), "elo_hi": num(self.hi),
                "elo_games": self.games, "elo_pooled_games": round(self.pooled_games, 1),
                "elo_seconds": round(self.seconds, 1)}


def quick_estimate(
    candidate: PlayerSpec,
    *,
    prior_elo: float | None = None,
    pool: Mapping[str, Sequence[float]] | None = None,
    time_budget_s: float = 180.0,
    max_games: int = 100,
    max_plies: int = DEFAULT_MAX_PLIES,
    workers: int | None = None,
    anchors: AnchorSet | None = None,
    book: str | os.PathLike[str] | None = None,
    pgn_path: str | os.PathLike[str] | None = None,
    seed: int = 0,
    game_pool: GamePool | None = None,
    expected_game_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> EloEstimate:
    """Per-cycle estimate: the two anchors nearest the estimate, until the budget is spent.

    ``pool`` holds earlier games as ``{anchor name: [wins, draws, losses]}``
    (fractional counts: the caller decays them); they enter the fit and
    the choice of anchors, and the result's :meth:`EloEstimate.tally` is
    this call's games alone. Anchors the pool names that this anchor set
    lacks are ignored. ``game_pool``: play in the caller's worker processes.
    ``expected_game_s``: how long a game probably takes (earlier calls'
    ``longest_game_s``), so that no game starts that would end past the budget.

    No game starts once the time left is shorter than the longest game so
    far, so the call ends within ``time_budget_s`` unless a game runs
    longer than every game before it (or the first games alone exceed it).
    ``clock``: what the budget is read on (tests drive a fake one).
    """
    return _gauntlet(candidate, anchors or load_anchors(), prior_elo, max_games, time_budget_s,
                     workers, book, pgn_path, seed, spread=2, event="l4demons elo (per cycle)", pool=pool,
                     max_plies=max_plies, game_pool=game_pool, expected_game_s=expected_game_s, clock=clock)


def full_measurement(
    candidate: PlayerSpec,
    games: int = 100,
    *,
    tc: str | None = None,
    pgn_path: str | os.PathLike[str] | None = None,
    prior_elo: float | None = None,
    workers: int | None = None,
    anchors: AnchorSet | None = None,
    book: str | os.PathLike[str] | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
) -> EloEstimate:
    """On-demand measurement: ``games`` games over the three anchors nearest, all written to ``pgn_path``.

    ``tc`` changes the candidate's budget per move (see :func:`apply_tc`);
    the anchors keep the limits they were calibrated with.
    """
    if tc:
        candidate = apply_tc(candidate, tc)
    return _gauntlet(candidate, anchors or load_anchors(), prior_elo, games, time_budget_s,
                     workers, book, pgn_path, seed, spread=3, event="l4demons elo")


def apply_tc(spec: PlayerSpec, tc: str) -> PlayerSpec:
    """``spec`` with a per-move budget: ``800`` or ``nodes=800``, ``depth=3``, ``time=0.1`` / ``0.1s``.

    :raises BadTimeControl: unparsable, or a budget the kind has no use for
        (the net takes nodes or time, not depth).
    """
    text = tc.strip().lower()
    key, _, value = text.rpartition("=")
    if not key:
        key, value = ("time", value[:-1]) if value.endswith("s") else ("nodes", value)
    if key not in ("nodes", "depth", "time"):
        raise BadTimeControl(f"time control {tc!r}: use nodes=N, depth=N or time=SECONDS")
    if spec.kind == "net" and key == "depth":
        raise BadTimeControl(f"time control {tc!r}: the net searches nodes or time, e.g. --tc nodes=800")
    try:
        number: float = float(value) if key == "time" else int(value)
    except ValueError:
        raise BadTimeControl(f"time control {tc!r}: {value!r} is not a number") from None
    if number <= 0:
        raise BadTimeControl(f"time control {tc!r}: the budget must be positive")
    params = {k: v for k, v in spec.params if k not in ("nodes", "depth", "time")}
    return PlayerSpec.make(spec.kind, spec.label, **params, **{key: number})


def _gauntlet(
    candidate: PlayerSpec,
    anchor_set: AnchorSet,
    prior_elo: float | None,
    max_games: int,
    time_budget_s: float | None,
    workers: int | None,
    book: str | os.PathLike[str] | None,
    pgn_path: str | os.PathLike[str] | None,
    seed: int,
    spread: int,
    event: str,
    pool: Mapping[str, Sequence[float]] | None = None,
    max_plies: int = DEFAULT_MAX_PLIES,
    game_pool: GamePool | None = None,
    expected_game_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> EloEstimate:
    started = clock()
    by_name = {a.name: a for a in anchor_set.anchors}
    prior = {name: [float(x) for x in counts] for name, counts in (pool or {}).items() if name in by_name}
    tally: dict[str, list[int]] = {}
    scheduled: dict[str, int] = {}
    records: list[GameRecord] = []
    openings = load_openings(min(MAX_OPENINGS, max(1, (max_games + 1) // 2)), seed=seed, book=book)
    # The budget is for games: reading the book (seconds on a loaded machine) does not eat it.
    deadline = None if time_budget_s is None else clock() + time_budget_s
    estimate = anchor_set.sorted()[0].elo
    if prior_elo is not None and math.isfinite(prior_elo):
        estimate = float(prior_elo)
    if prior:
        estimate = _fit(prior, by_name).elo

    def next_job(index: int) -> GameJob:
        # Finish an opening pair first, then the least-played of the nearest anchors.
        odd = [name for name, n in scheduled.items() if n % 2 == 1]
        near = anchor_set.nearest(estimate, spread)
        anchor = by_name[odd[0]] if odd else min(near, key=lambda a: (scheduled.get(a.name, 0), abs(a.elo - estimate)))
        k = scheduled.get(anchor.name, 0)
        scheduled[anchor.name] = k + 1
        return GameJob(index, candidate, anchor.spec, k % 2 == 0, openings[(k // 2) % len(openings)],
                       max_plies, seed * 1_000_003 + index, event)

    n_workers = default_workers(max_games) if workers is None else min(workers, max_games)
    with borrowed_or_new(game_pool, n_workers) as pool:
        pending: dict[cf.Future[GameRecord], str] = {}
        index = 0
        while True:
            while (index < max_games and len(pending) < pool.slots
                   and time_for_another(records, deadline, expected_game_s, clock)):
                job = next_job(index)
                pending[pool.submit(job)] = job.b.name
                index += 1
            if not pending:
                break
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                name = pending.pop(future)
                record = future.result()
                records.append(record)
                counts = tally.setdefault(name, [0, 0, 0])
                counts[{1.0: 0, 0.5: 1, 0.0: 2}[record.score_a]] += 1
            estimate = _fit(_merged(prior, tally), by_name).elo
            log.debug("%d games, estimate %.0f", len(records), estimate)
    if pgn_path is not None:
        write_pgn(pgn_path, [r.pgn for r in sorted(records, key=lambda r: r.index)])
    fit = _fit(_merged(prior, tally), by_name)
    rows = tuple(
        OpponentResult(name, by_name[name].elo, w, d, lost, performance(by_name[name], w, d, lost))
        for name, (w, d, lost) in sorted(tally.items(), key=lambda kv: by_name[kv[0]].elo)
    )
    result = EloEstimate(candidate.name, fit.elo, fit.lo, fit.hi, len(records), clock() - started,
                         rows, None if pgn_path is None else os.fspath(pgn_path),
                         pooled_games=sum(sum(c) for c in prior.values()),
                         longest_game_s=max((r.seconds for r in records), default=0.0))
    log.debug("%s: Elo %.0f [%.0f, %.0f] from %d games in %.0fs", result.candidate, result.elo, result.lo,
             result.hi, result.games, result.seconds)
    return result


def _merged(prior: Mapping[str, Sequence[float]], tally: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """Counts of both, added per anchor."""
    out = {name: list(counts) for name, counts in prior.items()}
    for name, counts in tally.items():
        out[name] = [a + b for a, b in zip(out.get(name, [0.0, 0.0, 0.0]), counts)]
    return out


def _fit(tally: Mapping[str, Sequence[float]], by_name: dict[str, Anchor]) -> EloInterval:
    """ML rating from the tally, its interval widened by the anchors' own errors."""
    rows = [(by_name[name].elo, w, d, lost) for name, (w, d, lost) in tally.items()]
    if not rows:
        return EloInterval(math.nan, -math.inf, math.inf, 0)
    fit = fit_one(rows)
    se_fit = (fit.hi - fit.elo) / Z95
    p = {name: expected_score(fit.elo - by_name[name].elo) for name in tally}
    info = {name: sum(counts) * p[name] * (1 - p[name]) for name, counts in tally.items()}
    total = sum(info.values()) or 1.0
    se_anchor2 = sum((info[name] / total * by_name[name].error / Z95) ** 2 for name in tally)
    se = math.sqrt(se_fit**2 + se_anchor2)
    return EloInterval(fit.elo, fit.elo - Z95 * se, fit.elo + Z95 * se, fit.games)


def format_table(estimate: EloEstimate) -> str:
    """A plain-text table: one row per opponent, then the overall rating."""
    lines = [f"{'opponent':<20} {'rating':>7} {'games':>5} {'W':>4} {'D':>4} {'L':>4} {'score':>6}  performance"]
    for row in estimate.per_opponent:
        perf = row.performance
        perf_text = f"{perf.elo:.0f} [{perf.lo:.0f}, {perf.hi:.0f}]"
        lines.append(f"{row.name:<20} {row.elo:>7.0f} {row.games:>5} {row.wins:>4} {row.draws:>4} {row.losses:>4} "
                     f"{100 * row.score:>5.1f}%  {perf_text}")
    lines.append(f"{estimate.candidate}: Elo {estimate.elo:.0f} ± {estimate.error:.0f} "
                 f"(95%: {estimate.lo:.0f}..{estimate.hi:.0f}), {estimate.games} games in {estimate.seconds:.0f}s")
    if estimate.pgn_path:
        lines.append(f"games written to {estimate.pgn_path}")
    return "\n".join(lines)
