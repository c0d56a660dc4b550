"""``l4demons pretrain``: a supervised warm start, committed like a training cycle.

The run (``../docs/warmstart.md``):

1. Check the input before touching the hub: the teacher starts as a UCI
   engine, every PGN file yields a game, the budget leaves time to train.
2. Open the hub as ``l4demons train`` does, with the training run's own
   parts (:mod:`l4demons.lifecycle.start`: the random-initial commit on an
   empty hub, else resume from the head).
3. Collect labelled positions for ``label_share`` of the budget: the teacher
   plays and labels games in one process per core
   (:func:`~l4demons.pretrain.labels.teacher_games`), or labels positions
   drawn from the hub's own self-play window in one process per core
   (``--hub-positions``, :mod:`~l4demons.pretrain.hub_positions`), or PGN
   games are read (:mod:`~l4demons.pretrain.pgn`). Every tenth game is held
   out.
4. Train the hub's network on them for the rest of the budget (or
   ``epochs`` passes when only ``--positions`` is given), the value target
   all from the labels (they are a teacher chunk, ``replay.py``), at
   ``--lr`` and a tenth of it for the last quarter. The tenth stays in the
   committed learner state: self-play goes on at it.
5. A short Elo estimate (the per-cycle one, with a fresh pool: the net is
   a new player), then one commit "Warm start: N positions from SOURCE,
   Elo ~E, Loss L" with ``model_best.pt`` and the labelled positions as a
   teacher chunk in the window, so ``l4demons train`` goes on to draw a
   decaying share of each batch from them (``LearnerConfig.teacher_share``)
   instead of forgetting them.

A stop (Ctrl-C, or SIGTERM, to the process or its whole group) while
labelling keeps the hub as it was: the labelling processes and their
teachers ignore the group's signal and end at their next position when this
process tells them. While training or measuring, the net trained so far is
committed, marked interrupted.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import uuid

import chess.engine
import numpy as np

from l4demons.checkpoint import MODEL_FILE
from l4demons.hub import HubUnavailable
from l4demons.learner import LearnerConfig
from l4demons.lifecycle.best_net import BestNet
from l4demons.lifecycle.commit import Committer
from l4demons.lifecycle.common import TrainError, elo_text
from l4demons.lifecycle.config import TrainConfig
from l4demons.lifecycle.measure import Measurer
from l4demons.lifecycle.run_state import RunState
from l4demons.lifecycle.start import start
from l4demons.lifecycle.trainer import loss_columns
from l4demons.losses import Losses
from l4demons.pretrain import hub_positions, labels, parallel, pgn
from l4demons.progress import progress
from l4demons.replay import TEACHER_TAG, ReplayChunk, ReplayWindow

log = logging.getLogger("l4demons.train")

MIN_TRAIN_SECONDS = 20.0
"""A budget that leaves less than this for training is refused before the hub is touched."""
ANNEAL = 0.1
"""The learning rate of the last quarter of a warm start, and of the self-play after it, as a share of --lr."""


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """One warm start; every field is a ``l4demons pretrain`` flag (see :mod:`l4demons.flags`)."""

    teacher: str = "stockfish"
    """UCI engine that labels positions: a path, or stockfish ($L4D_STOCKFISH, else Debian's)."""
    nodes: int = 1000
    """Teacher nodes per position (about 940 labelled positions a second on 2 cores with Stockfish 15.1)."""
    depth: int | None = None
    """Teacher depth per position instead of --nodes."""
    multipv: int = 1
    """Teacher moves in the policy target (above 1: a softmax over their scores, 50 cp temperature)."""
    minutes: float | None = None
    """Wall-clock budget for labelling and training (default: 30, or --positions then --epochs)."""
    positions: int | None = None
    """Most positions to label or read."""
    hub_positions: int | None = None
    """Label up to this many positions drawn (uniformly, seeded) from the hub's own self-play window
    instead of the teacher's games."""
    label_share: float = 0.6
    """Share of --minutes spent collecting positions; the rest trains.

    Chosen by games (README, Arms, "The warm start's label share, again"):
    on the b3c32-mat net, 0.6 beat 0.35 head to head in two warm-start
    runs, +70 Elo [+29, +111] pooled over 270 games. At 0.35 the small net
    made 10.8 passes over its positions in a lone 30-minute warm start on
    2 cores (512 positions/s labelled at 1000 nodes): labelling, not
    training, was what it ran short of.
    """
    epochs: float = 6.0
    """Passes over the positions when there is no --minutes."""
    random_share: float = 0.2
    """Share of uniformly random moves in the teacher's games during the first --random-plies plies after the book line."""
    random_plies: int = 20
    """Plies after the book line in which the teacher's games may play a random move (none later)."""
    max_plies: int = 160
    """Longest teacher game, after the book opening."""
    min_elo: int | None = None
    """PGN: keep games whose players are both rated at least this."""
    net: str | None = None
    """Network size for a new hub (bNcM or a preset; default b3c32-mat on a CPU, small on a GPU, as for
    self-play); must match an existing hub's."""
    workers: int = 0
    """Labelling processes (0: one per core)."""
    batch_size: int = 256
    """Positions per backprop step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW); a tenth of it for the last quarter of training and the self-play after it."""
    elo_seconds: float = 60.0
    """Time of the Elo estimate in the commit message (0: none)."""
    seed: int = 0
    """Seed of the positions, the initial weights of an empty hub and the sampling."""

    def __post_init__(self) -> None:
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError("--minutes must be positive")
        if self.positions is not None and self.positions < 1:
            raise ValueError("--positions must be at least 1")
        if self.hub_positions is not None and (self.hub_positions < 1 or self.positions is not None):
            raise ValueError("--hub-positions must be at least 1, and counts the positions: drop --positions")
        if self.nodes < 1 or (self.depth is not None and self.depth < 1) or self.multipv < 1:
            raise ValueError("--nodes, --depth and --multipv must be at least 1")
        if not 0 < self.label_share < 1:
            raise ValueError("--label-share must be between 0 and 1")
        if self.epochs <= 0 or self.batch_size < 1 or self.lr <= 0 or self.elo_seconds < 0:
            raise ValueError("--epochs, --batch-size and --lr must be positive, --elo-seconds 0 or more")
        if not 0 <= self.random_share <= 1 or self.max_plies < 1 or self.workers < 0 or self.random_plies < 0:
            raise ValueError("--random-share must be in [0, 1], --max-plies at least 1, --workers and "
                             "--random-plies 0 or more")

    @property
    def budget_s(self) -> float | None:
        if self.minutes is not None:
            return self.minutes * 60.0
        return None if self.positions is not None or self.hub_positions is not None else 30 * 60.0

    @property
    def limit(self) -> chess.engine.Limit:
        return chess.engine.Limit(depth=self.depth) if self.depth is not None else chess.engine.Limit(nodes=self.nodes)


class PretrainError(TrainError):
    """Bad input to a warm start: reported in one line, nothing committed."""


class WarmStart:
    """The training run's start, measurement and commit, with supervised data instead of self-play cycles."""

    def __init__(self, pcfg: PretrainConfig, pgn_paths: list[str] | None, hub=None, hub_uri: str | None = None,
                 stop=None) -> None:
        # teacher rows: value all from the labels; the warm start's net is its raw weights (measured so)
        learner = LearnerConfig(batch_size=pcfg.batch_size, lr=pcfg.lr, ema_steps=0)
        cfg = TrainConfig(hub=hub_uri, net=pcfg.net, seed=pcfg.seed, elo_seconds=pcfg.elo_seconds, gate_games=0,
                          learner=learner, workers=pcfg.workers)
        self.run_state = RunState.open(cfg, hub, stop)
        self.best = BestNet(self.run_state)
        self.committer = Committer(self.run_state, self.best)
        self.measurer = Measurer(self.run_state, self.best)
        self.pcfg = pcfg
        self.pgn_paths = list(pgn_paths or [])
        self.teacher_path: str | None = None
        self.hub_games: list[hub_positions.HubGame] = []
        """``--hub-positions``: the positions drawn from the hub's window, by game (after the start)."""

    # -- 1. input ---------------------------------------------------------------
    def check_input(self) -> None:
        budget = self.pcfg.budget_s
        if budget is not None and budget * (1 - self.pcfg.label_share) < MIN_TRAIN_SECONDS:
            raise PretrainError(f"a budget of {budget / 60:.2g} minutes leaves under {MIN_TRAIN_SECONDS:.0f}s "
                                "to train; give more --minutes")
        try:
            for path in self.pgn_paths:
                next(iter(pgn.read_games(path)))
        except pgn.PgnError as e:
            raise PretrainError(str(e)) from None
        if self.pcfg.hub_positions is not None:
            self._check_hub_window()
        if not self.pgn_paths:
            try:
                self.teacher_path = labels.find_teacher(self.pcfg.teacher)
                labels.open_teacher(self.teacher_path).quit()
            except labels.TeacherError as e:
                raise PretrainError(str(e)) from None

    def _check_hub_window(self) -> None:
        """``--hub-positions`` on an empty hub (or with PGN files): refused before the start commits anything.
        A hub with history and no self-play positions is refused after the start (:meth:`_draw_hub_positions`)."""
        if self.pgn_paths:
            raise PretrainError("--hub-positions has the teacher label the hub's own positions; drop --pgn")
        run = self.run_state
        if run.outbox.entries():
            return  # the start goes on from cycles an earlier run left on disk
        try:
            head = run.hub.head()
        except HubUnavailable:
            return  # the start goes on from the cached commit, or says why it cannot
        if head is None or MODEL_FILE not in run.hub.list_files(head):
            raise PretrainError(self._no_window())

    def _no_window(self) -> str:
        return (f"hub {self.run_state.hub.uri} holds no self-play positions for --hub-positions; "
                "train some cycles first (l4demons train) or drop --hub-positions")

    # -- the run ---------------------------------------------------------------
    def run(self):
        run = self.run_state
        self.check_input()
        t0 = time.time()
        budget = self.pcfg.budget_s
        try:
            # the whole window the head names (start sizes it before loading); a new hub's net is the device's
            # default, as self-play's: on a CPU b3c32-mat beat b6c64 by +616 Elo [+499, +1028] after 30 minutes of
            # warm start each (README, Arms, "The warm start's net size")
            start(run, self.committer)
            if self.pcfg.hub_positions is not None:
                self._draw_hub_positions()
            games = self._collect(None if budget is None else t0 + budget * self.pcfg.label_share)
            if run.stop.requested:
                log.info("[TRAIN] stopped while collecting positions; the hub keeps commit %s", (run.head or "")[:8])
                return run.state
            chunk = ReplayChunk.from_games(self._chunk_name(), games) if games else None
            if chunk is None or int(chunk.position_mask(False).sum()) < self.pcfg.batch_size:
                raise PretrainError(f"only {len(chunk or [])} positions were collected, too few to train on; "
                                    "give more --minutes, --positions or --hub-positions")
            losses, val, steps = self._fit(chunk, None if budget is None else t0 + budget)
            self._finish(chunk, losses, val, steps, time.time() - t0)
            self.committer.commit_waiting()
            return run.state
        finally:
            self.measurer.close()
            shutil.rmtree(run.workdir, ignore_errors=True)

    def _chunk_name(self) -> str:
        """A teacher chunk's name (``replay.is_teacher``)."""
        return f"{self.run_state.state.cycle + 1:06d}{TEACHER_TAG}{uuid.uuid4().hex[:8]}"

    @property
    def source(self) -> str:
        if self.pgn_paths:
            return ", ".join(p.rsplit("/", 1)[-1] for p in self.pgn_paths)
        limit = f"depth {self.pcfg.depth}" if self.pcfg.depth is not None else f"{self.pcfg.nodes} nodes"
        teacher = f"{self.teacher_path.rsplit('/', 1)[-1]} at {limit}"
        return f"the hub's self-play labelled by {teacher}" if self.pcfg.hub_positions is not None else teacher

    # -- 3. positions ------------------------------------------------------------
    def _draw_hub_positions(self) -> None:
        """``--hub-positions``: draw them from the self-play chunks the start resumed (seeded by --seed and cycle).

        :raises PretrainError: the window holds no self-play training positions.
        """
        run = self.run_state
        rng = np.random.default_rng([self.pcfg.seed, run.state.cycle])
        self.hub_games = hub_positions.sample_hub_games(run.replay.chunks, self.pcfg.hub_positions, rng)
        if not self.hub_games:
            raise PretrainError(self._no_window())
        log.info("[TRAIN] warm start: %d positions of %d self-play games drawn from the %d in the hub's window",
                 sum(map(len, self.hub_games)), len(self.hub_games),
                 sum(int(c.position_mask(False).sum()) for c in run.replay.chunks if not c.teacher))

    def _collect(self, deadline: float | None) -> list:
        run = self.run_state
        p = self.pcfg
        limit = p.positions if p.positions is not None else 10**9
        t0 = time.time()
        if self.pgn_paths:
            games, read = pgn.pgn_games(self.pgn_paths, p.min_elo, limit, deadline or float("inf"), run.stop)
            log.info("[TRAIN] warm start: %d positions from %d of %d games read in %.0fs", sum(map(len, games)),
                     len(games), read, time.time() - t0)
            return games
        try:
            if p.hub_positions is not None:
                games, skipped = parallel.label_hub_positions(self.teacher_path, p, self.hub_games,
                                                              deadline or float("inf"), run.stop)
                if skipped:
                    log.info("[TRAIN] warm start: %d of the hub's positions skipped: the game is over there", skipped)
            else:
                games = parallel.label_teacher_games(self.teacher_path, p, deadline or float("inf"), limit, run.stop)
        except labels.TeacherError as e:  # in a labelling process
            raise PretrainError(str(e)) from None
        n = sum(map(len, games))
        log.info("[TRAIN] warm start: %d positions from %s in %.0fs (%.0f/s)", n, self.source,
                 time.time() - t0, n / max(time.time() - t0, 1e-9))
        return games

    # -- 4. supervised training ------------------------------------------------------
    def _fit(self, chunk: ReplayChunk, deadline: float | None):
        run = self.run_state
        p, learner = self.pcfg, run.learner
        window = ReplayWindow()
        window.add(chunk)  # a teacher chunk alone: every row of every batch is the teacher's
        n = window.train_positions
        total = None if deadline is not None else max(1, int(p.epochs * n / p.batch_size))
        rng = np.random.default_rng([p.seed, run.state.cycle])
        t0, done, sums = time.time(), 0, np.zeros(2)
        span = (deadline - t0) if deadline is not None else None
        learner.set_lr(p.lr)  # --lr, also on a hub whose learner trained at another rate
        log.info("[TRAIN] warm start: training on %d positions for %s", n,
                 f"{total} steps" if total is not None else f"{span:.0f}s")
        with progress(total=total, desc="[TRAIN] warm start", unit="step") as bar:
            while not run.stop.requested:
                late = (done >= 0.75 * total) if total is not None else (time.time() - t0 >= 0.75 * span)
                if late and learner.lr != p.lr * ANNEAL:
                    learner.set_lr(p.lr * ANNEAL)
                if total is not None and done >= total or deadline is not None and time.time() >= deadline:
                    break
                k = 20 if total is None else min(20, total - done)
                losses = learner.train_steps(window, k, rng, should_stop=run.stop)
                sums += np.array([losses.policy, losses.value]) * k
                done += k
                bar.update(k)
        # The hand-off: self-play fine-tunes at the annealed rate (kept in the committed scheduler state), not at
        # --lr, which would undo in a few cycles what the last quarter settled. Also after a stop cut it short.
        learner.set_lr(p.lr * ANNEAL)
        val = learner.validation_losses(window, teacher=True)
        train = Losses(*(sums / max(done, 1))) if done else None
        log.info("[LOSS] warm start: %d steps (%.1f epochs over %d positions) in %.0fs; train %s, validation %s",
                 done, done * p.batch_size / max(n, 1), n, time.time() - t0,
                 f"{train.total:.4f}" if train else "n/a", f"{val.total:.4f}" if val else "n/a")
        return train, val, done

    # -- 5. measure and commit ----------------------------------------------------
    def _finish(self, chunk: ReplayChunk, losses, val, steps: int, seconds: float) -> None:
        run, st = self.run_state, self.run_state.state
        cycle = st.cycle + 1
        st.elo, st.elo_pool = None, {}  # a new player: earlier cycles' games say nothing about it
        elo = None if run.stop.requested else self.measurer.estimate_now(cycle)
        interrupted = run.stop.requested  # a stop may also have cut the measurement short
        st.cycle = cycle
        st.positions += len(chunk)
        st.hours += seconds / 3600
        st.elo = elo.elo if elo is not None else None
        # Self-play's window keeps the labelled positions apart from its capacity, as a share of each batch that
        # decays with the self-play training positions generated from now on; sample reuse counts self-play only.
        chunk.handoff_positions = st.train_positions
        run.replay.add(chunk)
        st.replay_chunks = run.replay.names
        best = self.best.promote(cycle)
        loss = losses.total if losses else (val.total if val else None)
        run.metrics.append({
            "cycle": cycle, "warm_start": True, "source": self.source, "games": chunk.games,
            "positions": len(chunk), "steps": run.learner.step, "warm_steps": steps,
            **loss_columns("train", losses), **loss_columns("val", val),
            "seconds": round(seconds, 1), "hours": round(st.hours, 4), "time": time.time(),
            "interrupted": interrupted, "best": True,
            **(elo.as_metrics() if elo is not None else {"elo": None}),
        })
        loss_text = "n/a" if loss is None else f"{loss:.4f}"
        message = (f"Warm start: {len(chunk)} positions from {self.source}, Elo ~{elo_text(st.elo)}, "
                   f"Loss {loss_text}")
        if interrupted:
            message += " (interrupted)"
        self.committer.commit(message + f"\n\nBest model - cycle {cycle} (warm start)", chunk, best)
