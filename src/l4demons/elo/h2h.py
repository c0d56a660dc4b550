"""Head-to-head between two checkpoints with an SPRT stop.

Is this cycle's net stronger than the previous one (or the best)? Anchors
answer only to within their own errors; two nets playing each other
answer directly. The match stops as soon as the sequential probability
ratio test accepts H0 (no stronger than ``elo0``) or H1 (at least ``elo1``
stronger), or at ``max_games``/``time_budget_s`` undecided.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from l4demons.elo.game import DEFAULT_MAX_PLIES
from l4demons.elo.match import MatchResult, play_match, write_pgn
from l4demons.elo.pool import GamePool
from l4demons.elo.openings import MAX_OPENINGS, load_openings
from l4demons.elo.players import PlayerSpec
from l4demons.elo.rating import EloInterval, los, pairwise_elo, sprt, sprt_bounds, sprt_llr


@dataclasses.dataclass(frozen=True)
class HeadToHead:
    """Outcome of an SPRT match, from ``a``'s side."""

    match: MatchResult
    verdict: Literal["H0", "H1"] | None
    """``H1``: a is at least elo1 stronger; ``H0``: at most elo0; None: undecided."""
    llr: float
    bounds: tuple[float, float]
    elo: EloInterval
    """a's Elo advantage over b with its 95% interval."""
    los: float
    """Likelihood of superiority of a over b."""
    elo0: float
    elo1: float


def head_to_head(
    a: PlayerSpec,
    b: PlayerSpec,
    *,
    elo0: float = 0.0,
    elo1: float = 10.0,
    alpha: float = 0.05,
    beta: float = 0.05,
    max_games: int = 200,
    time_budget_s: float | None = None,
    workers: int | None = None,
    book: str | os.PathLike[str] | None = None,
    pgn_path: str | os.PathLike[str] | None = None,
    max_plies: int = DEFAULT_MAX_PLIES,
    seed: int = 0,
    pool: GamePool | None = None,
    expected_game_s: float = 0.0,
    adjudicate_material: int = 0,
) -> HeadToHead:
    """Play ``a`` against ``b`` in colour-swapped opening pairs until the SPRT decides.

    :raises ValueError: ``elo1 <= elo0`` or ``alpha``/``beta`` outside (0, 0.5).
    """
    if elo1 <= elo0:
        raise ValueError(f"elo1 ({elo1}) must exceed elo0 ({elo0})")
    if not (0 < alpha < 0.5 and 0 < beta < 0.5):
        raise ValueError(f"alpha and beta must be in (0, 0.5), got {alpha}, {beta}")
    openings = load_openings(min(MAX_OPENINGS, max(1, (max_games + 1) // 2)), seed=seed, book=book)

    def decided(tally: tuple[int, int, int]) -> bool:
        return sprt(*tally, elo0, elo1, alpha, beta) is not None

    match = play_match(a, b, openings, max_games, workers=workers, time_budget_s=time_budget_s,
                       should_stop=decided, max_plies=max_plies, seed=seed, event="l4demons head-to-head",
                       pool=pool, expected_game_s=expected_game_s, adjudicate_material=adjudicate_material)
    if pgn_path is not None:
        write_pgn(pgn_path, match.pgns)
    w, d, lost = match.wins, match.draws, match.losses
    return HeadToHead(
        match=match,
        verdict=sprt(w, d, lost, elo0, elo1, alpha, beta),
        llr=sprt_llr(w, d, lost, elo0, elo1) if match.games else 0.0,
        bounds=sprt_bounds(alpha, beta),
        elo=pairwise_elo(w, d, lost),
        los=los(w, lost),
        elo0=elo0,
        elo1=elo1,
    )


def format_head_to_head(h2h: HeadToHead) -> str:
    """Two lines: the score and the SPRT state."""
    m = h2h.match
    verdict = {"H1": f"H1 accepted: {m.a} is stronger by >= {h2h.elo1:g}",
               "H0": f"H0 accepted: {m.a} is not stronger by more than {h2h.elo0:g}",
               None: "undecided"}[h2h.verdict]
    return (f"{m.a} vs {m.b}: +{m.wins} ={m.draws} -{m.losses} ({m.games} games), "
            f"Elo {h2h.elo.elo:+.0f} [{h2h.elo.lo:+.0f}, {h2h.elo.hi:+.0f}], LOS {100 * h2h.los:.1f}%\n"
            f"SPRT({h2h.elo0:g}, {h2h.elo1:g}): LLR {h2h.llr:.2f} in [{h2h.bounds[0]:.2f}, {h2h.bounds[1]:.2f}], "
            f"{verdict}")
