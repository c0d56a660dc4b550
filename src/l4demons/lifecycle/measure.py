"""Each cycle's measurement: a pooled Elo estimate, and the gate that picks ``model_best.pt``.

Both are games, and together they cost a share of the cycle
(``--elo-share``, 20% by default), not a fixed time, so a fast cycle on a
GPU and a slow one on two cores both spend most of their time learning:

- **Elo** (:func:`l4demons.elo.quick_estimate`): the net against the
  anchors nearest its rating, with the earlier cycles' games in the fit,
  their counts halved every ``--elo-halflife`` minutes of training.
  Consecutive nets differ little, so a game or two a cycle gives a tight
  interval, and the decay lets it follow a net that improves.
- **The gate** (:func:`l4demons.elo.head_to_head`, AlphaGo Zero's
  evaluator): the net against the current ``model_best.pt`` in
  colour-swapped opening pairs; it becomes the best only by scoring more
  than half. "Best" then means what every front door needs: it beat the
  previous best over the board. The first best's opponent is the initial
  random net. Without games (``--elo-seconds 0`` or ``--gate-games 0``) the
  newest net is the best, as in AlphaZero.

A stop (a signal) cuts the games in flight at their next move (the pool
holds the run's :class:`~l4demons.signals.StopFlag`): the cycle is then
committed at once with what was measured before it, and without a new best.

Parts of the run (:mod:`.run_state`): :class:`Measurer` plays the games,
:class:`BestNet` keeps the best net's file.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

from l4demons.checkpoint import BEST_FILE
from l4demons.hub import HubError
from l4demons.lifecycle.budgets import elo_budget_seconds
from l4demons.lifecycle.run_state import RunState
from l4demons.network import WeightsError, read_weights, save_weights

log = logging.getLogger("l4demons.train")

GATE_SHARE = 0.4
"""Part of the measuring time that goes to the gate (the rest to the Elo estimate)."""
QUICK_MAX_PLIES = 200
"""Per-cycle games end after this many plies (the full measurement plays on to 400): drawn in Elo games,
in gate games won by a side at least :data:`GATE_ADJUDICATION` pawns ahead (nets that cannot mate yet would
otherwise draw every gate game, and the best would never change)."""
GATE_ADJUDICATION = 5


@dataclasses.dataclass(frozen=True)
class Measurement:
    elo: object | None = None
    """:class:`l4demons.elo.EloEstimate`, or None when no Elo games were played."""
    gate: object | None = None
    """:class:`l4demons.elo.HeadToHead` against the best, or None without a gate."""
    promoted: bool = False
    """The net becomes ``model_best.pt``."""
    seconds: float = 0.0


class BestNet:
    """The local copy of ``model_best.pt``: the gate's opponent, and the file a promotion commits.

    Each new best gets a new file name: game workers cache players by file name.
    """

    def __init__(self, run: RunState) -> None:
        self.run = run
        self.path: Path | None = None
        self._serial = 0

    def _new_path(self) -> Path:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._serial += 1
        self.path = self.run.workdir / f"best-{self._serial}.pt"
        return self.path

    def load_from(self, commit: str | None) -> None:
        """``commit``'s ``model_best.pt``; the run's current net where there is none (or it does not fit)."""
        run = self.run
        if commit is not None:
            try:
                path = run.hub.download(BEST_FILE, commit)
                if path is not None and read_weights(path)[0] == run.net_cfg:
                    shutil.copyfile(path, self._new_path())
                    return
            except (HubError, WeightsError) as e:
                log.warning("[ELO] model_best.pt of %s is unusable (%s); the gate starts from the current net",
                            commit[:8], e)
        save_weights(run.net, run.net_cfg, self._new_path())

    def promote(self, cycle: int) -> Path:
        """The run's current net, trained through ``cycle``, becomes the best; its file."""
        self.run.state.best_cycle = cycle
        save_weights(self.run.net, self.run.net_cfg, self._new_path())
        return self.path


class Measurer:
    """The per-cycle Elo and the gate; see the module docstring.

    The games run in one pool of worker processes kept for the whole run:
    starting processes and loading torch each cycle would cost seconds of
    the measuring share. Each kind of measuring keeps its share of the run
    (an overrun is paid back by later cycles, and a budget too small for one
    game this cycle grows until one fits), and no game starts that would
    probably end past it.
    """

    def __init__(self, run: RunState, best: BestNet) -> None:
        self.run = run
        self.best = best
        self._pool = None
        self._spent = {"elo": 0.0, "gate": 0.0, "other": 0.0}  # this run's seconds per kind of measuring, and the rest
        self._game_s = {"elo": 0.0, "gate": 0.0}  # how long recent games took

    def _games(self):
        if self._pool is None:
            from l4demons.devices import cpu_count
            from l4demons.elo.match import GamePool

            self._pool = GamePool(cpu_count(), stop=self.run.stop)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _budget(self, kind: str, share: float) -> float:
        cfg = self.run.cfg
        if cfg.elo_seconds is not None:
            return cfg.elo_seconds * share
        return max(0.0, elo_budget_seconds(cfg.elo_share, self._spent["other"]) * share - self._spent[kind])

    def _spend(self, kind: str, seconds: float, longest_game_s: float, games: int) -> None:
        self._spent[kind] += seconds
        if games:
            self._game_s[kind] = longest_game_s

    def measure(self, cycle: int, other_seconds: float) -> Measurement:
        """Elo and gate for the net after this cycle's training, within the measuring budget."""
        run = self.run
        if not run.cfg.measures:
            return Measurement(promoted=True)
        self._spent["other"] += other_seconds
        candidate_path = run.workdir / f"candidate-{cycle}.pt"
        save_weights(run.net, run.net_cfg, candidate_path)
        from l4demons.elo.match import GamesStopped

        try:
            return self._measure_games(cycle, other_seconds, candidate_path)
        except GamesStopped:
            log.info("[ELO] cycle %d: the stop cut the Elo games short; committing without an Elo", cycle)
            return Measurement()
        finally:
            candidate_path.unlink(missing_ok=True)  # a run of many cycles would otherwise fill the disk

    def _measure_games(self, cycle: int, other_seconds: float, candidate_path: Path) -> Measurement:
        """Elo then gate (see :meth:`measure`); raises :class:`~l4demons.elo.match.GamesStopped` on a stop."""
        from l4demons.elo.match import GamesStopped

        cfg = self.run.cfg
        gate_share = GATE_SHARE if cfg.gate_games else 0.0
        from l4demons.elo import PlayerSpec, quick_estimate

        candidate = PlayerSpec.net(candidate_path, nodes=cfg.elo_nodes)
        st = self.run.state
        budget = self._budget("elo", 1.0 - gate_share)
        est = quick_estimate(candidate, prior_elo=st.elo, pool=st.elo_pool, time_budget_s=budget,
                             max_games=cfg.elo_games, max_plies=QUICK_MAX_PLIES, seed=cycle, game_pool=self._games(),
                             expected_game_s=self._game_s["elo"])
        self._spend("elo", est.seconds, est.longest_game_s, est.games)
        decay = 0.5 ** (other_seconds / (60.0 * cfg.elo_halflife))  # this cycle's age, in half-lives
        st.elo_pool = decayed_pool(st.elo_pool, est.tally(), decay)
        log.info("[ELO] cycle %d: %.0f (95%% %.0f..%.0f) from %d new games (+%.1f pooled) in %.0fs of %.0fs: %s",
                 cycle, est.elo, est.lo, est.hi, est.games, est.pooled_games, est.seconds, budget,
                 ", ".join(f"{o.name} {o.wins}/{o.draws}/{o.losses}" for o in est.per_opponent) or "no game fit")
        elo = est if est.games or est.pooled_games else None
        gate, promoted, seconds = None, not cfg.gate_games, est.seconds
        if self.run.stop.requested:  # the gate's games would only be cut off, and no stopped run picks a new best
            return Measurement(elo=elo, seconds=seconds)
        if cfg.gate_games:
            try:
                gate, promoted = play_gate(candidate_path, self.best.path, cfg.elo_nodes, cfg.gate_games,
                                           self._budget("gate", gate_share), seed=cycle, game_pool=self._games(),
                                           expected_game_s=self._game_s["gate"])
            except GamesStopped:
                log.info("[ELO] cycle %d: the stop cut the gate's games short; model_best.pt stays", cycle)
                return Measurement(elo=elo, seconds=seconds)
            m = gate.match
            self._spend("gate", m.seconds, max((r.seconds for r in m.records), default=0.0), m.games)
            seconds += m.seconds
            log.info("[ELO] cycle %d vs model_best.pt (cycle %s): +%d =%d -%d in %.0fs: %s", cycle,
                     "initial" if st.best_cycle is None else st.best_cycle, m.wins, m.draws, m.losses, m.seconds,
                     "the new best" if promoted else "kept the old best")
        return Measurement(elo=elo, gate=gate, promoted=promoted, seconds=seconds)


def play_gate(candidate: Path, best: Path, nodes: int, games: int, time_budget_s: float | None, seed: int = 0,
              workers: int | None = None, game_pool=None, expected_game_s: float = 0.0):
    """The candidate against the best in colour-swapped pairs; ``(HeadToHead, promoted)``.

    Promoted only by scoring more than half: a draw-heavy match between
    equals keeps the old best, and a weaker net never passes.
    """
    from l4demons.elo import PlayerSpec, head_to_head

    gate = head_to_head(PlayerSpec.net(candidate, nodes=nodes), PlayerSpec.net(best, nodes=nodes),
                        max_games=games, time_budget_s=time_budget_s, max_plies=QUICK_MAX_PLIES, seed=seed,
                        elo0=0.0, elo1=50.0, workers=workers, pool=game_pool, expected_game_s=expected_game_s,
                        adjudicate_material=GATE_ADJUDICATION)
    return gate, gate.match.games > 0 and gate.match.score > 0.5


def decayed_pool(pool: dict, tally: dict, decay: float) -> dict:
    """``decay * pool + tally`` per anchor; anchors whose weight has faded below a hundredth of a game drop out."""
    out = {}
    for name in set(pool) | set(tally):
        counts = [decay * float(a) + float(b) for a, b in zip(pool.get(name, [0, 0, 0]), tally.get(name, [0, 0, 0]))]
        if sum(counts) >= 0.01:
            out[name] = counts
    return out
