"""The best-model gate: a net becomes ``model_best.pt`` only when a sequential test says it is stronger.

AlphaGo Zero's evaluator, with fishtest's statistics: the candidate plays
the current best in colour-swapped opening pairs, a few at a time, and the
generalized SPRT on the trinomial (:func:`l4demons.elo.rating.sprt`)
decides between "no stronger" (:data:`ELO0`) and "stronger by
:data:`ELO1`", with error rates :data:`ALPHA` (a weaker net promoted) and
:data:`BETA` (a better net kept out). Only ``H1`` promotes; ``H0`` or the
game cap without a verdict keep the old best, and the measurer then tests a
newer net. One pair never decides: "best" means what every front door
needs, a net that beat the previous best over the board on enough games to
mean it.

A gate between two nets of nearly the same strength can take a hundred
games, and where games are slow (one core, 20% of it measuring) that is
half an hour: on one self-play worker the first gate of a run (cycle 1
against the random initial net) played 64 games while training reached
cycle 16, and the best stayed the random net all along. So an undecided
gate yields (:meth:`Gate.yields_to`) once it has played
:data:`SUPERSEDE_GAMES` games and a net :data:`SUPERSEDE_CYCLES` cycles
newer has been rated: its candidate is kept out, as by the game cap, and
the newer net, likelier further from the best, is tested instead. Every
gate still plays at least those games, so nets keep being decided. A gate
whose LLR has reached :data:`SUPERSEDE_LLR` (a third of the way to a
promotion) does not yield: it plays on to its verdict or the cap. Yielding
whatever the tally said froze the best for the last half of an hour on 2
cores (cycle 45 of 98: five gates in a row gave way after about 20 games,
four of them leaning to the candidate, the newest net +93 Elo over it), and the
gate model (``bench/gate_sim.py``) puts the lean rule's best closer to the
newest net than either always yielding or never (README, the gate).

A :class:`Gate` keeps its tally between calls, so the measurer
(:mod:`.measure`) can play it a pair at a time between other work.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from l4demons.elo.rating import sprt, sprt_llr

ELO0, ELO1 = 0.0, 80.0
"""The SPRT's hypotheses: the candidate is no stronger than the best / stronger by ``ELO1``."""
ALPHA, BETA = 0.05, 0.10
"""Error rates: promoting a net that is no stronger / keeping out one that is ``ELO1`` stronger."""
MAX_PLIES = 200
"""Gate games end after this many plies, won by a side at least :data:`ADJUDICATION` pawns ahead (nets that
cannot mate yet would otherwise draw every gate game, and the best would never change)."""
ADJUDICATION = 5
SUPERSEDE_GAMES = 20
"""Games an undecided gate plays before a much newer net may take its place."""
SUPERSEDE_CYCLES = 5
"""How many cycles newer that net must be."""
SUPERSEDE_LLR = 1.0
"""An undecided gate whose LLR is at least this plays on instead of yielding: it leans to a promotion."""


@dataclasses.dataclass
class Gate:
    """One candidate's sequential test against the best; see the module docstring."""

    cycle: int
    """The cycle whose net is the candidate."""
    candidate: Path
    best: Path
    best_cycle: int | None
    """The cycle of the best net (None: the initial weights)."""
    nodes: int
    max_games: int
    seed: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    seconds: float = 0.0
    """Game seconds played (summed over games: a core-seconds figure)."""
    longest_game_s: float = 0.0
    best_file: Path | None = None
    """After a promotion: the measurer's copy of the candidate, the new best's file."""
    superseded_by: int | None = None
    """The cycle of the newer net this undecided gate yielded to (:meth:`yields_to`)."""
    _openings: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def verdict(self) -> str | None:
        return sprt(self.wins, self.draws, self.losses, ELO0, ELO1, ALPHA, BETA)

    @property
    def llr(self) -> float:
        return sprt_llr(self.wins, self.draws, self.losses, ELO0, ELO1) if self.games else 0.0

    @property
    def done(self) -> bool:
        return self.verdict is not None or self.games >= self.max_games or self.superseded_by is not None

    def yields_to(self, cycle: int, lean_llr: float = SUPERSEDE_LLR) -> bool:
        """Whether a net rated at ``cycle`` should take this undecided gate's place (module docstring).

        ``lean_llr``: the LLR from which the gate plays on instead (``bench/gate_sim.py`` varies it)."""
        return (not self.done and self.games >= SUPERSEDE_GAMES
                and cycle - self.cycle >= SUPERSEDE_CYCLES and self.llr < lean_llr)

    @property
    def promoted(self) -> bool:
        return self.verdict == "H1"

    def play(self, pairs: int, pool=None, workers: int | None = None, time_budget_s: float | None = None,
             expected_game_s: float = 0.0) -> None:
        """Up to ``pairs`` more colour-swapped pairs, ending early once the test decides.

        :raises l4demons.elo.game.GamesStopped: the run's stop cut a game short.
        """
        from l4demons.elo import PlayerSpec
        from l4demons.elo.match import play_match
        from l4demons.elo.openings import MAX_OPENINGS, load_openings

        games = min(2 * pairs, self.max_games - self.games)
        if games <= 0 or self.verdict is not None:
            return
        if not self._openings:
            self._openings = load_openings(min(MAX_OPENINGS, max(1, (self.max_games + 1) // 2)), seed=self.seed)
        first = self.games // 2
        openings = [self._openings[(first + i) % len(self._openings)] for i in range((games + 1) // 2)]
        before = (self.wins, self.draws, self.losses)

        def decided(tally: tuple[int, int, int]) -> bool:
            return sprt(*(a + b for a, b in zip(before, tally)), ELO0, ELO1, ALPHA, BETA) is not None

        match = play_match(PlayerSpec.net(self.candidate, nodes=self.nodes), PlayerSpec.net(self.best, nodes=self.nodes),
                           openings, games, max_plies=MAX_PLIES, workers=workers, time_budget_s=time_budget_s,
                           should_stop=decided, seed=self.seed * 7919 + self.games, event="l4demons gate", pool=pool,
                           expected_game_s=expected_game_s, adjudicate_material=ADJUDICATION)
        self.wins += match.wins
        self.draws += match.draws
        self.losses += match.losses
        self.seconds += sum(r.seconds for r in match.records)
        self.longest_game_s = max([self.longest_game_s, *(r.seconds for r in match.records)])

    def summary(self) -> str:
        if self.verdict is not None:
            state = {"H1": "the new best", "H0": "not stronger: kept the old best"}[self.verdict]
        elif self.superseded_by is not None:
            state = f"undecided, yielded to cycle {self.superseded_by}'s net: kept the old best"
        elif self.done:
            state = "undecided at the game cap: kept the old best"
        else:
            state = "playing on"
        return (f"cycle {self.cycle} vs model_best.pt (cycle {'initial' if self.best_cycle is None else self.best_cycle})"
                f": +{self.wins} ={self.draws} -{self.losses}, LLR {self.llr:+.2f}: {state}")


def play_gate(candidate: Path, best: Path, nodes: int, games: int, seed: int = 0, workers: int | None = None,
              time_budget_s: float | None = None) -> Gate:
    """The whole sequential test of ``candidate`` against ``best`` at once (at most ``games`` games)."""
    gate = Gate(0, candidate, best, None, nodes, games, seed)
    gate.play((games + 1) // 2, workers=workers, time_budget_s=time_budget_s)
    return gate
