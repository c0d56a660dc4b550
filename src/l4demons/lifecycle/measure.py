"""Measurement beside learning: the Elo of committed nets and the gate that picks ``model_best.pt``.

Lc0 and KataGo evaluate networks in processes of their own while training
goes on; so does this run. After each cycle the trainer hands the
:class:`Measurer` its net (:meth:`Measurer.offer`) and goes straight on to
the next cycle's self-play. A thread of the trainer's process drives the
games, which run in a :class:`~l4demons.elo.pool.GamePool` of their own
processes:

- **Elo** (:func:`l4demons.elo.quick_estimate`): the newest net offered
  against the anchors nearest its rating, with the earlier nets' games in
  the fit, their counts halved every ``--elo-halflife`` minutes of
  training. A net offered while another is measured waits; a newer one
  replaces it, so the measurer never falls behind by more than one net.
- **The gate** (:mod:`.gate`): a net already rated plays the best net in a
  sequential test, a pair at a time between Elo rounds; only a verdict of
  "stronger" makes it the best.

:meth:`Measurer.collect`, called by the trainer before each commit, applies
what finished since the last commit to the training state: so every commit's
"Elo ~E" comes from games of that net or of a recent one its metrics row
names (``elo_cycle``), and a promotion commits the tested net's own weights
as ``model_best.pt``.

The games' share of the machine: ``--elo-share`` of its cores over the run
(20%: on 2 cores, one game process busy 40% of the time), in as many
processes as that share or the cores self-play leaves free allow; or, with
``--elo-seconds S``, S game-seconds per cycle. Without either, no games: the
newest net is the best, as in AlphaZero.

A stop (a signal) cuts the games in flight at their next move (the pool
holds the run's :class:`~l4demons.signals.StopFlag`); the cycle is then
committed with what was measured before it.

Parts of the run (:mod:`.run_state`): :class:`Measurer` plays the games,
:class:`~.best_net.BestNet` keeps the best net's file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from pathlib import Path
from typing import Callable

from l4demons.lifecycle.best_net import BestNet
from l4demons.lifecycle.gate import Gate
from l4demons.lifecycle.run_state import RunState

log = logging.getLogger("l4demons.train")

GATE_SHARE = 0.6
"""Part of the measuring time that goes to the gate (the rest to the Elo estimate, which pools earlier nets'
games). The gate's game rate decides how close ``model_best.pt`` stays to the newest net more than any rule of
when a test yields: in ``bench/gate_sim.py``'s model 1.5 times the games (0.6 against 0.4) took the best's
deficit to the newest net from 37 to 16 Elo from random weights and from 9 to 3 on top of a warm start, where at
0.4 thirty minutes of self-play promoted nothing (README, "The gate's share raised to 60%")."""
QUICK_MAX_PLIES = 200
"""Elo games end (drawn) after this many plies; the full measurement plays on to 400."""
@dataclasses.dataclass(frozen=True)
class Collected:
    """What :meth:`Measurer.collect` applied: the newest Elo, a promotion, and the measuring time."""

    elo: object | None = None
    """The newest :class:`l4demons.elo.EloEstimate` finished since the last collect (None: none)."""
    elo_cycle: int | None = None
    """The cycle whose net that estimate rated."""
    gates: tuple[Gate, ...] = ()
    """Gates decided since the last collect."""
    best: Path | None = None
    """The new best net's file, to commit as ``model_best.pt`` (None: the best stays)."""
    seconds: float = 0.0
    """Game seconds (summed over game processes) played since the last collect."""


class Measurer:
    """Elo games and the gate, in their own processes, beside the training loop; see the module docstring."""

    def __init__(self, run: RunState, best: BestNet, clock: Callable[[], float] = time.monotonic,
                 game_workers: int | None = None) -> None:
        self.run = run
        self.game_workers = game_workers
        """Game processes (None: from the share and the free cores; 0: games in the measuring thread, for tests)."""
        self.best = best
        self.clock = clock
        self._cond = threading.Condition()
        self._offered: tuple[int, Path, float | None, dict] | None = None  # newest net not measured yet
        self._done: list = []  # finished (cycle, EloEstimate) and Gate results, for collect()
        self._spent = {"elo": 0.0, "gate": 0.0}  # game seconds played, per kind
        self._granted = 0.0  # --elo-seconds: game seconds owed by the cycles offered
        self._game_s = {"elo": 0.0, "gate": 0.0}  # how long recent games took
        self._reported = 0.0
        self.rated_cycle: int | None = None
        """The cycle whose net the newest Elo applied rated (this run)."""
        self._since_elo_s = 0.0  # training seconds since the last Elo applied (the pool's decay)
        self._started: float | None = None
        self._cores = 1
        self._closed = False
        self._busy = False
        self._starved = False  # waiting for time (--elo-seconds: for a cycle) to afford the next round
        self._pool = None
        self._thread: threading.Thread | None = None

    # -- the trainer's side --------------------------------------------------------
    def begin(self, selfplay_workers: int) -> None:
        """Start the game processes and the thread, beside ``selfplay_workers`` self-play processes."""
        cfg = self.run.cfg
        if not cfg.measures or self._thread is not None:
            return
        from l4demons.devices import cpu_count
        from l4demons.elo.pool import GamePool

        self._cores = cpu_count()
        workers = self.game_workers
        if workers is None:
            workers = max(1, min(self._cores - selfplay_workers, math.ceil(cfg.elo_share * self._cores)))
        self._pool = GamePool(workers, stop=self.run.stop)
        self._started = self.clock()
        self._thread = threading.Thread(target=self._loop, name="l4d-measure", daemon=True)
        self._thread.start()
        log.info("[ELO] measuring beside training in %d process(es): %s", workers,
                 f"{cfg.elo_seconds:g} game-seconds a cycle" if cfg.elo_seconds is not None
                 else f"{100 * cfg.elo_share:.0f}% of {self._cores} cores")

    def offer(self, cycle: int) -> None:
        """The run's net after ``cycle``: rate it next (it replaces a net offered earlier and not begun)."""
        if self._thread is None:
            return
        run = self.run
        path = run.workdir / f"candidate-{cycle}.pt"
        run.save_played(path)
        with self._cond:
            if self._offered is not None:
                self._offered[1].unlink(missing_ok=True)
            self._offered = (cycle, path, run.state.elo, dict(run.state.elo_pool))
            if run.cfg.elo_seconds is not None:
                self._granted += run.cfg.elo_seconds
            self._cond.notify_all()

    def collect(self, training_seconds: float) -> Collected:
        """Apply to the training state what finished since the last call (the trainer's thread)."""
        st, cfg = self.run.state, self.run.cfg
        with self._cond:
            done, self._done = self._done, []
            spent = sum(self._spent.values())
        seconds, self._reported = spent - self._reported, spent
        self._since_elo_s += training_seconds
        elo, elo_cycle, gates, best = None, None, [], None
        for item in done:
            if isinstance(item, Gate):
                gates.append(item)
                if item.promoted:
                    st.best_cycle, best = item.cycle, item.best_file
                item.candidate.unlink(missing_ok=True)
                continue
            elo_cycle, elo = item
            decay = 0.5 ** (self._since_elo_s / (60.0 * cfg.elo_halflife))  # its age, in half-lives
            st.elo_pool = decayed_pool(st.elo_pool, elo.tally(), decay)
            st.elo = elo.elo
            self.rated_cycle = elo_cycle
            self._since_elo_s = 0.0
        return Collected(elo, elo_cycle, tuple(gates), best, seconds)

    def wait_idle(self) -> None:
        """Block until every net offered so far is rated and no gate is left to play, or the time earned
        does not afford the next round (tests, benchmarks)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (not self._busy and (self._offered is None or self._starved)))

    def close(self) -> None:
        """Stop the games in flight and the thread; nothing measured after this call is applied."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._pool is not None:
            self._pool.stop()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def estimate_now(self, cycle: int):
        """A one-off Elo estimate of the run's net, in this thread, with a fresh pool (the warm start's);
        None when no game was played or a stop cut them short."""
        from l4demons.devices import cpu_count
        from l4demons.elo import PlayerSpec, quick_estimate
        from l4demons.elo.game import GamesStopped
        from l4demons.elo.pool import GamePool

        run = self.run
        if not run.cfg.measures:
            return None
        path = run.workdir / f"candidate-{cycle}.pt"
        run.save_played(path)
        try:
            with GamePool(cpu_count(), stop=run.stop) as pool:
                est = quick_estimate(PlayerSpec.net(path, nodes=run.cfg.elo_nodes), time_budget_s=run.cfg.elo_seconds,
                                     max_games=run.cfg.elo_games, max_plies=QUICK_MAX_PLIES, seed=cycle,
                                     game_pool=pool)
        except GamesStopped:
            log.info("[ELO] the stop cut the Elo games short; committing without an Elo")
            return None
        finally:
            path.unlink(missing_ok=True)
        _log_estimate(cycle, est)
        return est if est.games else None

    # -- the measuring thread ----------------------------------------------------------
    def _allowance(self, kind: str) -> float:
        """Game seconds ``kind`` may still play (its share of the run's measuring time, less what it played)."""
        cfg = self.run.cfg
        share = GATE_SHARE if kind == "gate" else (1.0 - GATE_SHARE if cfg.gate_games else 1.0)
        if cfg.elo_seconds is not None:
            total = self._granted
        else:
            total = cfg.elo_share * self._cores * (self.clock() - self._started)
        return share * total - self._spent[kind]

    def _fits(self, kind: str) -> float:
        """Game seconds a round of ``kind`` needs: a game as long as the longest so far in every process."""
        return self._game_s[kind] * (self._pool.slots if kind == "elo" else 2)

    def _next_work(self, gate: Gate | None) -> tuple[str, object] | None:
        """The next job, waiting until there is one and its kind may play a game; None once closed."""
        with self._cond:
            while True:
                self._busy = False
                if self._closed:
                    return None
                if self._offered is not None and self._allowance("elo") >= max(1e-9, self._fits("elo")):
                    work, self._offered = self._offered, None
                    self._busy, self._starved = True, False
                    return "elo", work
                if gate is not None and not gate.done and self._allowance("gate") > 0:
                    self._busy, self._starved = True, False
                    return "gate", gate
                waiting = self._offered is not None or (gate is not None and not gate.done)
                self._starved = waiting
                self._cond.notify_all()  # wait_idle() may be waiting for this
                if waiting and self.run.cfg.elo_seconds is None:
                    self._cond.wait(timeout=1.0)  # the share's allowance grows with time
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        from l4demons.elo.game import GamesStopped

        gate: Gate | None = None
        try:
            while (work := self._next_work(gate)) is not None:
                kind, job = work
                if kind == "elo":
                    cycle, path, prior_elo, pool = job
                    self._rate(cycle, path, prior_elo, pool)
                    gate = self._gate_after_rating(gate, cycle, path)
                else:
                    self._play_gate(job)
                    if job.done:
                        self._finish_gate(job)
        except GamesStopped:
            log.info("[ELO] the stop cut the measuring games short")
        except Exception as e:  # noqa: BLE001 - measuring must never take training down with it
            log.warning("[ELO] measuring stopped for this run: %s: %s", type(e).__name__, e)
        finally:
            with self._cond:
                self._busy = False
                self._closed = True
                self._cond.notify_all()

    def _rate(self, cycle: int, path: Path, prior_elo: float | None, pool: dict) -> None:
        from l4demons.elo import PlayerSpec, quick_estimate

        cfg = self.run.cfg
        budget = self._allowance("elo") / self._pool.slots  # wall seconds, with every game process busy
        est = quick_estimate(PlayerSpec.net(path, nodes=cfg.elo_nodes), prior_elo=prior_elo, pool=pool,
                             time_budget_s=budget, max_games=cfg.elo_games, max_plies=QUICK_MAX_PLIES, seed=cycle,
                             game_pool=self._pool, expected_game_s=self._game_s["elo"])
        self._spend("elo", est.longest_game_s, est.games, est.seconds * min(est.games, self._pool.slots))
        _log_estimate(cycle, est)
        if est.games or est.pooled_games:
            with self._cond:
                self._done.append((cycle, est))

    def _gate_after_rating(self, gate: Gate | None, cycle: int, path: Path) -> Gate | None:
        """The gate to play once ``cycle``'s net at ``path`` is rated: the one in flight, or a gate of that net
        when there is none, the last one is done, or the one in flight yields to it (:meth:`Gate.yields_to`)."""
        if gate is not None and gate.yields_to(cycle):
            gate.superseded_by = cycle
            self._finish_gate(gate)
        if gate is None or gate.done:
            return self._new_gate(cycle, path)
        if path != gate.candidate:
            path.unlink(missing_ok=True)
        return gate

    def _finish_gate(self, gate: Gate) -> None:
        """Log a decided (or yielded) gate and hand it to :meth:`collect`; a promotion is adopted at once, so
        the next gate plays the new best before the trainer has committed it."""
        if gate.promoted:
            gate.best_file = self.best.adopt(gate.candidate, gate.cycle)
        log.info("[ELO] gate: %s", gate.summary())
        with self._cond:
            self._done.append(gate)

    def _new_gate(self, cycle: int, path: Path) -> Gate | None:
        cfg = self.run.cfg
        best, best_cycle = self.best.current()
        if not cfg.gate_games or best is None:
            path.unlink(missing_ok=True)
            return None
        gate = Gate(cycle, path, best, best_cycle, cfg.elo_nodes, cfg.gate_games, seed=cycle)
        log.info("[ELO] gate: cycle %d's net against model_best.pt (cycle %s), up to %d games", cycle,
                 "initial" if gate.best_cycle is None else gate.best_cycle, gate.max_games)
        return gate

    def _play_gate(self, gate: Gate) -> None:
        before = gate.seconds
        gate.play(max(1, self._pool.slots // 2), pool=self._pool, expected_game_s=self._game_s["gate"])
        self._spend("gate", gate.longest_game_s, gate.games, gate.seconds - before)

    def _spend(self, kind: str, longest_game_s: float, games: int, seconds: float) -> None:
        with self._cond:
            self._spent[kind] += seconds
            if games:
                self._game_s[kind] = longest_game_s


def _log_estimate(cycle: int, est) -> None:
    log.info("[ELO] cycle %d: %.0f (95%% %.0f..%.0f) from %d new games (+%.1f pooled) in %.0fs: %s",
             cycle, est.elo, est.lo, est.hi, est.games, est.pooled_games, est.seconds,
             ", ".join(f"{o.name} {o.wins}/{o.draws}/{o.losses}" for o in est.per_opponent) or "no game fit")


def decayed_pool(pool: dict, tally: dict, decay: float) -> dict:
    """``decay * pool + tally`` per anchor; anchors whose weight has faded below a hundredth of a game drop out."""
    out = {}
    for name in set(pool) | set(tally):
        counts = [decay * float(a) + float(b) for a, b in zip(pool.get(name, [0, 0, 0]), tally.get(name, [0, 0, 0]))]
        if sum(counts) >= 0.01:
            out[name] = counts
    return out
