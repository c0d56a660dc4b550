"""The training run of ``docs/lifecycle.md``: init or resume, cycles, commits.

A run: open the hub; on an empty hub commit random initial weights at once,
otherwise resume from the newest usable commit (weights, optimizer,
counters, RNG, replay window): :mod:`.start`. Then cycles until the cycle or
hour budget is spent or a stop is requested: self-play -> replay window ->
backprop -> train/validation loss -> measured Elo -> one hub commit
"Training cycle N, Elo ~E, Loss L" (plus ``model_best.pt`` when the net is
the best the hub has seen). Commits, the outbox and merges with other
trainers: :mod:`.commit`. The configuration: :mod:`.config`.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from l4demons.checkpoint import TrainingState
from l4demons.devices import default_workers, resolve_device, worker_devices, workers_per_gpu
from l4demons.distributed import World, any_rank, broadcast, close_world, gather_lists, init_world, rank_device, sync_module
from l4demons.hub import Hub, open_hub
from l4demons.learner import Learner, Losses
from l4demons.lifecycle import bootstrap
from l4demons.lifecycle.budgets import steps_for_cycle, window_size
from l4demons.lifecycle.commit import CommitMixin
from l4demons.lifecycle.common import TrainError, elo_text, machine_name
from l4demons.lifecycle.config import TrainConfig
from l4demons.lifecycle.measure import MeasureMixin
from l4demons.lifecycle.start import StartMixin
from l4demons.network import NetConfig, build_network, weights_dict
from l4demons.outbox import Outbox
from l4demons.progress import progress
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.selfplay import SelfPlayConfig
from l4demons.signals import StopFlag
from l4demons.workers import SelfPlayPool

log = logging.getLogger("l4demons.train")

RESIGN_MIN_CHECKS = 10  # played-out games that would have resigned, before resigning is trusted
RESIGN_MAX_FALSE = 0.05  # ...and at most this share of them not lost
RESIGN_DECAY = 0.8  # older evidence fades: the value head changes every cycle


class Trainer(StartMixin, CommitMixin, MeasureMixin):
    """Runs cycles against one hub. ``run()`` is the whole of ``l4demons train``."""

    def __init__(self, cfg: TrainConfig, hub: Hub | None = None, stop: StopFlag | None = None) -> None:
        self.cfg = cfg
        self.hub = hub if hub is not None else open_hub(cfg.hub)
        self.stop = stop or StopFlag()
        self.device = _resolve_device(cfg.device)
        self.workdir = Path(tempfile.mkdtemp(prefix="l4demons-"))
        self.head: str | None = None
        self.net_cfg: NetConfig | None = None
        self.net: torch.nn.Module | None = None
        self.base_state: dict | None = None  # weights at the head we build on (for merges)
        self.learner: Learner | None = None
        self.state = TrainingState()
        self.metrics: list[dict] = []
        self.replay = ReplayWindow(cfg.window.min_positions)
        self.rng = np.random.default_rng(cfg.seed)
        self.outbox = Outbox(self.hub.uri)
        self.world = World()

    # -- the run --------------------------------------------------------------
    def run(self) -> TrainingState:
        self.world = init_world(self.device)
        self.device = rank_device(self.device, self.world)
        if not self.world.is_main:  # one voice: rank 0 logs, the others only warn
            logging.getLogger("l4demons").setLevel(logging.WARNING)
        try:
            if self.world.is_main:
                self._start()
                self._load_best()
            self._share_start()
            cycles_done, t0 = 0, time.time()
            if self._keep_going(cycles_done, t0):
                workers, devices = self._selfplay_layout()
                log.info("[TRAIN] device %s, GPUs %d, world size %d, self-play workers %d per rank, network %s",
                         self.device, torch.cuda.device_count() if self.device.startswith("cuda") else 0,
                         self.world.size, workers, self.net_cfg.name)
                with SelfPlayPool(workers, self.net_cfg, self.cfg.selfplay, devices) as pool:
                    while self._keep_going(cycles_done, t0):
                        self._cycle(pool)
                        cycles_done += 1
            if self.world.is_main:
                self._commit_waiting()  # cycles paced onto disk go up before the run ends (lifecycle/commit.py)
            if self.stop.requested:
                log.info("[TRAIN] stopped (%s); last commit %s", self.stop.reason, (self.head or "")[:8])
            return self.state
        finally:
            self._close_games()
            shutil.rmtree(self.workdir, ignore_errors=True)
            close_world(self.world)

    def _keep_going(self, cycles_done: int, t0: float) -> bool:
        """Another cycle? Every rank must agree, or the collectives would hang."""
        go = self._budget_left(cycles_done, t0) and not self.stop.requested
        return not any_rank(not go, self.world)

    def _selfplay_layout(self) -> tuple[int, list[str]]:
        """Workers and devices of this rank's self-play pool."""
        if self.world.active:
            if self.device.startswith("cuda"):  # one GPU a rank, shared by several workers (devices.py)
                return self.cfg.workers or workers_per_gpu(torch.cuda.device_count()), [self.device]
            return self.cfg.workers or max(1, default_workers("cpu") // self.world.size), ["cpu"]
        return self.cfg.workers or default_workers(self.device), worker_devices(self.device)

    def _share_start(self) -> None:
        """Give every rank rank 0's starting point, and wrap the learner's net in DDP."""
        if not self.world.active:
            return
        main = self.world.is_main
        payload = broadcast(
            (weights_dict(self.net, self.net_cfg)["state_dict"], self.net_cfg, self.state, self.metrics,
             self.replay.chunks, self.head, self.rng.bit_generator.state) if main else None,
            self.world,
        )
        if not main:
            state_dict, self.net_cfg, self.state, self.metrics, chunks, self.head, rng_state = payload
            self.net = build_network(self.net_cfg).to(self.device)
            self.net.load_state_dict(state_dict)
            self.learner = Learner(self.net, self.cfg.learner, self.device)
            if self.state.learner:
                self.learner.load_state_dict(self.state.learner)
            self.rng.bit_generator.state = rng_state
            for chunk in chunks:
                self.replay.add(chunk)
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        self.learner.net = DistributedDataParallel(self.net, device_ids=ids)

    def _share_after_commit(self) -> None:
        """Rank 0 committed (and may have merged): bring the other ranks level."""
        if not self.world.active:
            return
        self.state, self.metrics, self.head = broadcast((self.state, self.metrics, self.head), self.world)
        sync_module(self.net, self.world)
        names = broadcast(self.replay.names, self.world)
        if any_rank(names != self.replay.names, self.world):
            chunks = broadcast(self.replay.chunks, self.world)
            self.replay = ReplayWindow(self.replay.capacity)
            for chunk in chunks:
                self.replay.add(chunk)

    def _budget_left(self, cycles_done: int, t0: float) -> bool:
        if self.cfg.cycles is not None and cycles_done >= self.cfg.cycles:
            return False
        if self.cfg.hours is not None and time.time() - t0 >= self.cfg.hours * 3600:
            return False
        return True

    # -- one cycle ------------------------------------------------------------
    def _cycle(self, pool: SelfPlayPool) -> None:
        cycle = self.state.cycle + 1
        main, world = self.world.is_main, self.world
        t0 = time.time()
        log.info("[TRAIN] cycle %d: self-play, %d games", cycle, self.cfg.games)
        state_dict = weights_dict(self.net, self.net_cfg)["state_dict"]
        share = self.cfg.games // world.size + (world.rank < self.cfg.games % world.size)
        # Fresh entropy per machine and rank: two trainers resuming from one commit must not play the same
        # games. The learner's sampling stays on the restored RNG, so a resumed run trains as it would have.
        seed = int(self.rng.integers(2**31)) ^ secrets.randbits(31) ^ (7919 * world.rank)
        with progress(total=share, desc="[TRAIN] self-play", unit="game", enabled=main) as bar:
            games = pool.play(state_dict, share, seed, on_game=lambda _: bar.update(1), should_stop=self.stop,
                              cfg=self._selfplay_config())
        games = gather_lists(games, world)
        if any_rank(self.stop.requested, world) and not self.stop.requested:
            self.stop.request("another rank stopped")
        t_play = time.time() - t0
        chunk = None
        name = broadcast(f"{cycle:06d}-{uuid.uuid4().hex[:8]}", world)
        new_train = 0
        if games:
            chunk = ReplayChunk.from_games(name, games)
            new_train = int(chunk.position_mask(False).sum())
            self.replay.capacity = window_size(self.state.train_positions + new_train, self.cfg.window)
            self.replay.add(chunk)
            log.info("[TRAIN] cycle %d: %d games, %d positions in %.0fs (%.0f games/h); results %s",
                     cycle, len(games), len(chunk), t_play, len(games) / t_play * 3600, _terminations(games))
        losses = None
        sample_rng = np.random.default_rng([int(self.rng.integers(2**31)), world.rank])
        steps, first = self._steps(new_train), self.learner.step
        if self.replay.train_positions and steps and not self.stop.requested:
            with progress(total=steps, desc="[TRAIN] backprop", unit="step", enabled=main) as bar:
                losses = self.learner.train_steps(self.replay, steps, sample_rng,
                                                  on_step=lambda *_: bar.update(1),
                                                  should_stop=lambda: any_rank(self.stop.requested, world))
        val = self.learner.validation_losses(self.replay)
        log.info("[LOSS] cycle %d: train %s, validation %s (%d steps, window %d positions)", cycle,
                 _fmt_losses(losses), _fmt_losses(val), steps, self.replay.train_positions)
        if main:
            measured = self._measure(cycle, time.time() - t0) if not self.stop.requested else None
            samples = (self.learner.step - first) * self.cfg.learner.batch_size * world.size
            self._finish_cycle(cycle, games, chunk, new_train, samples, losses, val, measured, time.time() - t0)
        self._share_after_commit()

    def _steps(self, new_train: int) -> int:
        """This cycle's backprop steps: --steps, or what the sample-reuse target owes (see budgets.py)."""
        if self.cfg.steps is not None:
            return self.cfg.steps
        return steps_for_cycle(self.state.train_positions + new_train, self.state.samples, self.cfg.sample_reuse,
                               self.cfg.learner.batch_size, self.world.size)

    def _selfplay_config(self) -> SelfPlayConfig:
        """Resignation only once played-out games show it is rarely wrong (KataGo and Lc0 check the same);
        the material rule only until the value head has learned what it teaches (lifecycle/bootstrap.py)."""
        st, cfg = self.state, self.cfg.selfplay
        trusted = st.resign_checks >= RESIGN_MIN_CHECKS and st.false_resigns <= RESIGN_MAX_FALSE * st.resign_checks
        if not trusted:
            cfg = dataclasses.replace(cfg, resign_playthrough=1.0)
        if st.material_retired:
            cfg = dataclasses.replace(cfg, material_win=0)
        return cfg

    def _check_material_rule(self, chunk: ReplayChunk | None) -> None:
        st, lead = self.state, self.cfg.selfplay.material_win
        if chunk is None or lead <= 0 or st.material_retired:
            return
        st.material_checks, st.material_agreed = bootstrap.update(
            st.material_checks, st.material_agreed, *bootstrap.agreement_counts(chunk.positions, chunk.values, lead,
                                                                                  chunk.game_offsets))
        if bootstrap.rule_retired(st.material_checks, st.material_agreed, self.cfg.material_trust):
            st.material_retired = True
            log.info("[TRAIN] the search now agrees with %.0f%% of quiet decisive material leads: the material rule "
                     "retires, games play on to mate, resignation or the length cap",
                     100 * st.material_agreed / st.material_checks)

    def _count_resign_checks(self, games: list) -> None:
        st = self.state
        st.resign_checks = RESIGN_DECAY * st.resign_checks + sum(g.would_resign for g in games)
        st.false_resigns = RESIGN_DECAY * st.false_resigns + sum(g.false_resign for g in games)
        if st.resign_checks:
            log.info("[TRAIN] resignation check: %.0f%% false over %.0f recent played-out games (resigning %s)",
                     100 * st.false_resigns / st.resign_checks, st.resign_checks,
                     "on" if self._selfplay_config().resign_playthrough < 1.0 else "off")

    def _finish_cycle(self, cycle, games, chunk, new_train, samples, losses, val, measured, seconds) -> None:
        interrupted = self.stop.requested
        st = self.state
        st.cycle = cycle
        st.games += len(games)
        self._count_resign_checks(games)
        self._check_material_rule(chunk)
        st.positions += len(chunk) if chunk else 0
        st.train_positions += new_train
        st.samples += samples
        st.hours += seconds / 3600
        if chunk is not None:
            st.replay_chunks = self.replay.names
        elo = measured.elo if measured is not None else None
        if elo is not None:
            st.elo = elo.elo
        loss = losses.total if losses else (val.total if val else None)
        if val is not None and (st.best_val_loss is None or val.total < st.best_val_loss):
            st.best_val_loss = val.total
        best = measured is not None and measured.promoted
        if best:
            self._promote(cycle)
        gate = measured.gate if measured is not None else None
        row = {
            "cycle": cycle, "games": len(games), "positions": len(chunk) if chunk else 0,
            "steps": self.learner.step, "train_loss": losses.total if losses else None,
            "train_policy": losses.policy if losses else None, "train_value": losses.value if losses else None,
            "val_loss": val.total if val else None, "val_policy": val.policy if val else None,
            "val_value": val.value if val else None, "seconds": round(seconds, 1), "hours": round(st.hours, 4),
            "machine": machine_name(), "time": time.time(), "interrupted": interrupted,
            "train_positions": new_train, "cycle_samples": samples, "samples": st.samples,
            "window": self.replay.train_positions, "material_rule": not st.material_retired,
            "material_agreement": round(st.material_agreed / st.material_checks, 3) if st.material_checks else None,
            "measure_seconds": round(measured.seconds, 1) if measured is not None else 0.0, "best": best,
            **(elo.as_metrics() if elo is not None else {"elo": None}),
            **({"gate_wins": gate.match.wins, "gate_draws": gate.match.draws, "gate_losses": gate.match.losses}
               if gate is not None else {}),
        }
        self.metrics.append(row)
        loss_text = "n/a" if loss is None else f"{loss:.4f}"
        message = f"Training cycle {cycle}, Elo ~{elo_text(elo.elo if elo else None)}, Loss {loss_text}"
        if interrupted:
            message += " (interrupted)"
        if best:
            best_loss = "n/a" if val is None else f"{val.total:.4f}"
            message += f"\n\nBest model - cycle {cycle}, loss={best_loss}, Elo ~{elo_text(elo.elo if elo else None)}"
        self._commit(message, chunk, best)


def _fmt_losses(losses: Losses | None) -> str:
    if losses is None:
        return "n/a"
    return f"{losses.total:.4f} (policy {losses.policy:.4f}, value {losses.value:.4f})"


def _terminations(games) -> str:
    counts: dict[str, int] = {}
    for g in games:
        counts[g.termination] = counts.get(g.termination, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _resolve_device(device: str) -> str:
    try:
        return resolve_device(device)
    except ValueError as e:
        raise TrainError(str(e)) from e
