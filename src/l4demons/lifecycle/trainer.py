"""The training run of ``docs/lifecycle.md``: init or resume, cycles, commits.

A run: open the hub; on an empty hub commit random initial weights at once,
otherwise resume from the newest usable commit (weights, optimizer,
counters, RNG, replay window). Then cycles until the cycle or hour budget is
spent or a stop is requested, each one::

    self-play (rounds until --cycle-seconds) -> replay window -> backprop
    -> train/validation loss -> the net handed to the measurer
    -> one hub commit "Training cycle N, Elo ~E, Loss L" (+ model_best.pt)

The measurer (:mod:`.measure`) plays its Elo games and the best-model gate in
processes of its own beside the loop; each commit carries what it finished.

The loop lives here and reads top to bottom; the run's state is one
:class:`~.run_state.RunState`, and each part takes it: :mod:`.start` (init
or resume), :mod:`.commit` (commits, the outbox, merges with other
trainers), :mod:`.measure` (Elo, the gate, the best net), :mod:`.ranks`
(DDP), :mod:`.bootstrap` (the self-play heuristics that step aside) and
:mod:`.budgets` (steps and window per cycle). The configuration:
:mod:`.config`.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import shutil
import time
import uuid

import numpy as np
import torch

from l4demons.checkpoint import TrainingState
from l4demons.devices import default_workers, worker_devices, workers_per_gpu
from l4demons.distributed import any_rank, broadcast, close_world, gather_lists, init_world, rank_device
from l4demons.hub import Hub
from l4demons.lifecycle import bootstrap
from l4demons.lifecycle.best_net import BestNet
from l4demons.lifecycle.budgets import another_round, steps_for_cycle, window_size
from l4demons.lifecycle.commit import Committer
from l4demons.lifecycle.common import elo_text, machine_name
from l4demons.lifecycle.config import TrainConfig
from l4demons.lifecycle.measure import Collected, Measurer
from l4demons.lifecycle.ranks import share_after_commit, share_start
from l4demons.lifecycle.run_state import RunState
from l4demons.lifecycle.start import start
from l4demons.losses import Losses
from l4demons.progress import progress
from l4demons.replay import ReplayChunk
from l4demons.signals import StopFlag
from l4demons.workers import SelfPlayPool

log = logging.getLogger("l4demons.train")


class Trainer:
    """Runs cycles against one hub. ``run()`` is the whole of ``l4demons train``."""

    def __init__(self, cfg: TrainConfig, hub: Hub | None = None, stop: StopFlag | None = None) -> None:
        self.run_state = RunState.open(cfg, hub, stop)
        self.best = BestNet(self.run_state)
        self.committer = Committer(self.run_state, self.best)
        self.measurer = Measurer(self.run_state, self.best)

    # -- the run --------------------------------------------------------------
    def run(self) -> TrainingState:
        run = self.run_state
        run.world = init_world(run.device)
        run.device = rank_device(run.device, run.world)
        if not run.world.is_main:  # one voice: rank 0 logs, the others only warn
            logging.getLogger("l4demons").setLevel(logging.WARNING)
        try:
            if run.world.is_main:
                start(run, self.committer)
                self.best.load_from(run.head)
            share_start(run)
            cycles_done, t0 = 0, time.time()
            if self._keep_going(cycles_done, t0):
                workers, devices = self._selfplay_layout()
                log.info("[TRAIN] device %s, GPUs %d, world size %d, self-play workers %d per rank, network %s, "
                         "learner in %s", run.device, torch.cuda.device_count() if run.device.startswith("cuda") else 0,
                         run.world.size, workers, run.net_cfg.name, run.learner.precision)
                with SelfPlayPool(workers, run.net_cfg, run.cfg.selfplay, devices) as pool:
                    if run.world.is_main:
                        self.measurer.begin(workers)
                    while self._keep_going(cycles_done, t0):
                        self.cycle(pool)
                        cycles_done += 1
            if run.world.is_main:
                self.committer.commit_waiting()  # cycles paced onto disk go up before the run ends
            if run.stop.requested:
                log.info("[TRAIN] stopped (%s); last commit %s", run.stop.reason, (run.head or "")[:8])
            return run.state
        finally:
            self.measurer.close()
            shutil.rmtree(run.workdir, ignore_errors=True)
            close_world(run.world)

    def _keep_going(self, cycles_done: int, t0: float) -> bool:
        """Another cycle? Every rank must agree, or the collectives would hang."""
        run = self.run_state
        cfg = run.cfg
        go = not run.stop.requested and (cfg.cycles is None or cycles_done < cfg.cycles) and (
            cfg.hours is None or time.time() - t0 < cfg.hours * 3600)
        return not any_rank(not go, run.world)

    def _selfplay_layout(self) -> tuple[int, list[str]]:
        """Workers and devices of this rank's self-play pool."""
        run = self.run_state
        cfg, device = run.cfg, run.device
        if run.world.active:
            if device.startswith("cuda"):  # one GPU a rank, shared by several workers (devices.py)
                return cfg.workers or workers_per_gpu(torch.cuda.device_count()), [device]
            return cfg.workers or max(1, default_workers("cpu") // run.world.size), ["cpu"]
        return cfg.workers or default_workers(device), worker_devices(device)

    # -- one cycle ------------------------------------------------------------
    def cycle(self, pool: SelfPlayPool) -> None:
        run = self.run_state
        cycle, main, t0 = run.state.cycle + 1, run.world.is_main, time.time()

        games = self._self_play(pool, cycle)
        chunk, new_train = self._add_to_window(cycle, games, time.time() - t0)

        first_step = run.learner.step
        losses, steps, teacher = self._backprop(new_train)
        val = run.learner.validation_losses(run.replay)
        log.info("[LOSS] cycle %d: train %s, validation %s (%d steps, window %d positions)", cycle,
                 _fmt_losses(losses), _fmt_losses(val), steps, run.replay.train_positions)

        if main:
            if not run.stop.requested:
                self.measurer.offer(cycle)
            measured = self.measurer.collect(time.time() - t0)
            # Self-play samples drawn: a warm start's teacher rows do not count toward self-play's reuse.
            samples = round((run.learner.step - first_step) * run.cfg.learner.batch_size * run.world.size
                            * (1.0 - teacher))
            self._commit_cycle(cycle, games, chunk, new_train, samples, losses, val, measured, time.time() - t0)
        share_after_commit(run)

    def _self_play(self, pool: SelfPlayPool, cycle: int) -> list:
        """This rank's rounds of games for ``--cycle-seconds``, gathered from every rank."""
        run = self.run_state
        world, main, cfg = run.world, run.world.is_main, run.cfg
        log.info("[TRAIN] cycle %d: self-play, %d games a round for %gs", cycle, cfg.games, cfg.cycle_seconds)
        share = cfg.games // world.size + (world.rank < cfg.games % world.size)
        # Fresh entropy per machine and rank: two trainers resuming from one commit must not play the same
        # games. The learner's sampling stays on the restored RNG, so a resumed run trains as it would have.
        seed = int(run.rng.integers(2**31)) ^ secrets.randbits(31) ^ (7919 * world.rank)
        weights, sp_cfg = run.played_weights(), bootstrap.selfplay_config(cfg.selfplay, run.state)
        games: list = []
        t0, rounds = time.time(), 0
        with progress(total=None, desc="[TRAIN] self-play", unit="game", enabled=main) as bar:
            while rounds == 0 or (not run.stop.requested and another_round(
                    time.time() - t0, (time.time() - t0) / rounds, cfg.cycle_seconds)):
                games += pool.play(weights, share, seed + 104729 * rounds, on_game=lambda _: bar.update(1),
                                   should_stop=run.stop, cfg=sp_cfg)
                rounds += 1
        games = gather_lists(games, world)
        if any_rank(run.stop.requested, world) and not run.stop.requested:
            run.stop.request("another rank stopped")
        return games

    def _add_to_window(self, cycle: int, games: list, seconds: float) -> tuple[ReplayChunk | None, int]:
        """The games as a replay chunk in the window (which grows with the data seen); ``(chunk, training positions)``."""
        run = self.run_state
        name = broadcast(f"{cycle:06d}-{uuid.uuid4().hex[:8]}", run.world)
        if not games:
            return None, 0
        chunk = ReplayChunk.from_games(name, games)
        # Played-on positions of decided games count at their value weight: steps and window follow what teaches.
        new_train = round(chunk.train_weight(run.cfg.learner.played_on_value_weight))
        run.replay.capacity = window_size(run.state.train_positions + new_train, run.cfg.window)
        run.replay.add(chunk)
        log.info("[TRAIN] cycle %d: %d games, %d positions in %.0fs (%.0f games/h); results %s",
                 cycle, len(games), len(chunk), seconds, len(games) / max(seconds, 1e-9) * 3600, _terminations(games))
        if played_on := int(chunk.played_on.sum()):
            log.info("[TRAIN] cycle %d: %d of %d positions played on after the material rule decided the game",
                     cycle, played_on, len(chunk))
        if rescored := sum(g.rescored for g in games):
            log.info("[TRAIN] cycle %d: %d of %d games scored as the known win they reached (a queen or rook against "
                     "a bare king)", cycle, rescored, len(games))
        return chunk, new_train

    def _backprop(self, new_train: int) -> tuple[Losses | None, int, float]:
        """This cycle's steps: ``--steps``, or what the sample-reuse target owes (see budgets.py);
        ``(losses, steps, teacher share)``.

        A warm start's labelled positions fill ``--teacher-share`` of each
        batch, halving every ``--teacher-halflife`` self-play training
        positions; once that is negligible they leave the window. The
        self-play rows of a batch are what sample reuse counts.
        """
        run = self.run_state
        cfg, world = run.cfg, run.world
        seen = run.state.train_positions + new_train
        teacher = run.learner.teacher_share(run.replay, seen)
        run.learner.decay_for(seen)
        steps = cfg.steps if cfg.steps is not None else steps_for_cycle(
            seen, run.state.samples, cfg.sample_reuse, cfg.learner.batch_size * (1.0 - teacher), world.size)
        if teacher == 0.0 and (gone := run.replay.drop_teacher()):
            log.info("[TRAIN] the teacher's share of a batch fell under 1%%: %s leave the window",
                     ", ".join(c.name for c in gone))
        if not (run.replay.train_positions and steps) or run.stop.requested:
            return None, steps, teacher
        if teacher:
            log.info("[TRAIN] teacher positions: %.1f%% of each batch", 100 * teacher)
        sample_rng = np.random.default_rng([int(run.rng.integers(2**31)), world.rank])
        # Under DDP asking every rank is a collective with a host sync: every 16th step, at the same steps on all.
        asked = itertools.count()
        every = 16 if world.active else 1

        def should_stop() -> bool:
            return next(asked) % every == 0 and any_rank(run.stop.requested, world)

        with progress(total=steps, desc="[TRAIN] backprop", unit="step", enabled=world.is_main) as bar:
            losses = run.learner.train_steps(run.replay, steps, sample_rng, teacher, on_step=lambda *_: bar.update(1),
                                             should_stop=should_stop)
        return losses, steps, teacher

    def _commit_cycle(self, cycle: int, games: list, chunk: ReplayChunk | None, new_train: int, samples: int,
                      losses: Losses | None, val: Losses | None, measured: Collected, seconds: float) -> None:
        """Count the cycle into the training state and metrics, and commit it (rank 0)."""
        run = self.run_state
        st, interrupted = run.state, run.stop.requested
        st.cycle = cycle
        st.games += len(games)
        bootstrap.note_resign_checks(st, games, run.cfg.selfplay)
        bootstrap.note_material_leads(st, chunk, run.cfg.selfplay.material_win, run.cfg.material_trust,
                                      play_on=run.cfg.selfplay.play_on_simulations > 0)
        st.positions += len(chunk) if chunk else 0
        st.train_positions += new_train
        st.samples += samples
        st.hours += seconds / 3600
        if chunk is not None:
            st.replay_chunks = run.replay.names
        elo = measured.elo
        if val is not None and (st.best_val_loss is None or val.total < st.best_val_loss):
            st.best_val_loss = val.total
        best = measured.best
        if not interrupted and (not run.cfg.measures or run.cfg.gate_games == 0):  # no gate: the newest is the best
            best = self.best.promote(cycle)
        run.metrics.append({
            "cycle": cycle, "games": len(games), "positions": len(chunk) if chunk else 0,
            "steps": run.learner.step, **loss_columns("train", losses), **loss_columns("val", val),
            "seconds": round(seconds, 1), "hours": round(st.hours, 4),
            "machine": machine_name(), "time": time.time(), "interrupted": interrupted,
            "train_positions": new_train, "cycle_samples": samples, "samples": st.samples,
            "window": run.replay.train_positions, "lr": run.learner.current_lr,
            "material_rule": bootstrap.selfplay_config(run.cfg.selfplay, st).material_win > 0,
            "material_agreement": round(st.material_agreed / st.material_checks, 3) if st.material_checks else None,
            "measure_seconds": round(measured.seconds, 1), "best": best is not None, "best_cycle": st.best_cycle,
            **(elo.as_metrics() if elo is not None else {"elo": None}), "elo_cycle": measured.elo_cycle,
            **({"gate_cycle": g.cycle, "gate_wins": g.wins, "gate_draws": g.draws, "gate_losses": g.losses,
                "gate_llr": round(g.llr, 2)} if (g := measured.gates[-1] if measured.gates else None) else {}),
        })
        loss = losses.total if losses else (val.total if val else None)
        elo_now = elo_text(st.elo)
        message = f"Training cycle {cycle}, Elo ~{elo_now}, Loss {'n/a' if loss is None else f'{loss:.4f}'}"
        if interrupted:
            message += " (interrupted)"
        lines = []
        if best is not None:
            val_text = "n/a" if val is None else f"{val.total:.4f}"
            won = next((g for g in measured.gates if g.promoted), None)
            lines.append(f"Best model - cycle {st.best_cycle}, loss={val_text}, Elo ~{elo_now}" + (
                f", gate +{won.wins} ={won.draws} -{won.losses} against cycle "
                f"{'initial' if won.best_cycle is None else won.best_cycle}" if won else ""))
        rated = self.measurer.rated_cycle
        if rated is not None and rated != cycle:
            lines.append(f"Elo ~{elo_now} from the games of cycle {rated}'s net.")
        if lines:
            message += "\n\n" + "\n".join(lines)
        self.committer.commit(message, chunk, best)


def loss_columns(prefix: str, losses: Losses | None) -> dict:
    """A metrics row's ``{prefix}_loss``, ``_policy`` and ``_value`` columns."""
    columns = {f"{prefix}_loss": losses.total if losses else None, f"{prefix}_policy": losses.policy if losses else None,
               f"{prefix}_value": losses.value if losses else None}
    if losses and losses.material:  # a net with the material head
        columns[f"{prefix}_material"] = losses.material
    return columns


def _fmt_losses(losses: Losses | None) -> str:
    if losses is None:
        return "n/a"
    material = f", material {losses.material:.4f}" if losses.material else ""
    return f"{losses.total:.4f} (policy {losses.policy:.4f}, value {losses.value:.4f}{material})"


def _terminations(games) -> str:
    counts: dict[str, int] = {}
    for g in games:
        counts[g.termination] = counts.get(g.termination, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
