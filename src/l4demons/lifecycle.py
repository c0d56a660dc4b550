"""The training run of ``docs/lifecycle.md``: init or resume, cycles, commits.

A run: open the hub; on an empty hub commit random initial weights at once,
otherwise resume from the newest usable commit (weights, optimizer,
counters, RNG, replay window). Then cycles until the cycle or hour budget
is spent or a stop is requested: self-play -> replay window -> backprop ->
train/validation loss -> measured Elo -> one hub commit "Training cycle N,
Elo ~E, Loss L" (plus ``model_best.pt`` when the validation loss beats the
best ever recorded on the hub).

Several trainers on one hub (merge policy): every commit names the head it
started from. When the hub answers that another trainer committed first,
this trainer pulls the new head and merges: weights become
``theirs + 1/2 * (ours - base)`` (see :mod:`l4demons.merge`: the hub's commit
stays whole, our cycle's change counts half), this cycle is
renumbered after theirs, the replay windows are united, and the commit is
retried. A merge keeps our delta whole for a further retry (the base moves
with it), so a second conflict adds 1/2 of our delta again, never theirs.
After ``MAX_MERGES`` failed tries the cycle is dropped with a log line
saying so; nothing is ever lost silently. A trainer that meets another's
initial commit on what it thought an empty hub continues from that one.

Damaged files: at the start every file needed (model, training state,
metrics) is downloaded verified and loaded; a commit whose files fail is
named in a log line and the newest good commit before it is used, the next
commit still going on top of the head (history is never rewritten).

Unreachable hub: a run starts from the newest commit in the local cache
(one ``[HF] hub unreachable`` line). A commit that cannot go up (network,
or a token without write access) waits in the :class:`Outbox`; later
cycles queue behind it, a new run continues from the newest waiting cycle,
and the queue goes up in order, each commit on the one before, with the
next upload that reaches the hub. If the hub moved on meanwhile, the
waiting cycles are merged onto its head as one commit (merge policy above).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from l4demons.checkpoint import (
    BEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    REPLAY_DIR,
    STATE_FILE,
    StateError,
    TrainingState,
    read_metrics,
    replay_file,
    write_metrics,
)
from l4demons.distributed import any_rank, broadcast, close_world, gather_lists, init_world, rank_device, sync_module, World
from l4demons.devices import default_workers, resolve_device, worker_devices
from l4demons.hub import CorruptFile, Hub, HubAuthError, HubConflict, HubError, HubNotFound, HubUnavailable, open_hub
from l4demons.outbox import Outbox, Pending
from l4demons.merge import merge_weights
from l4demons.modelcard import CARD_FILE, render_model_card
from l4demons.learner import Learner, LearnerConfig, Losses
from l4demons.network import NetConfig, WeightsError, build_network, read_weights, save_weights, weights_dict
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.selfplay import SelfPlayConfig
from l4demons.signals import StopFlag
from l4demons.workers import SelfPlayPool

log = logging.getLogger("l4demons.train")

INITIAL_MESSAGE = "Initial model weights (randomly initialized)"
MAX_MERGES = 5
RESIGN_MIN_CHECKS = 10  # played-out games that would have resigned, before resigning is trusted
RESIGN_MAX_FALSE = 0.05  # ...and at most this share of them not lost
RESIGN_DECAY = 0.8  # older evidence fades: the value head changes every cycle


class TrainError(Exception):
    """A training run that cannot start or go on; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run; every field is a ``l4demons train`` flag."""

    hub: str | None = None
    """Checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB or the local hub)."""
    cycles: int | None = None
    """Stop after this many cycles (default: run until --hours or Ctrl-C)."""
    hours: float | None = None
    """Start no new cycle after this many hours."""
    games: int = 40
    """Self-play games per cycle."""
    steps: int = 100
    """Backprop steps per cycle."""
    net: str | None = None
    """Network size for a new hub (bNcM or a preset); must match an existing hub's."""
    workers: int = 0
    """Self-play processes (0: one per core, or one per GPU)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    seed: int = 0
    """Seed of the initial weights and of the first run's RNG."""
    replay_capacity: int = 200_000
    """Training positions kept in the replay window."""
    elo_seconds: float = 120.0
    """Time budget of the per-cycle Elo estimate (0 disables it)."""
    elo_games: int = 40
    """Most games of the per-cycle Elo estimate."""
    elo_nodes: int = 64
    """Search nodes per move of the bot in Elo games."""
    selfplay: SelfPlayConfig = SelfPlayConfig()
    learner: LearnerConfig = LearnerConfig()

    def __post_init__(self) -> None:
        if self.cycles is not None and self.cycles < 0:
            raise ValueError("--cycles must be 0 or more")
        if self.hours is not None and self.hours <= 0:
            raise ValueError("--hours must be positive")
        if self.games < 1:
            raise ValueError("--games must be at least 1")
        if self.steps < 0:
            raise ValueError("--steps must be 0 or more")
        if self.workers < 0:
            raise ValueError("--workers must be 0 or more")
        if self.net is not None:
            NetConfig.from_name(self.net)


def machine_name() -> str:
    return platform.node() or "unknown"


def _elo_text(elo: float | None) -> str:
    return "n/a" if elo is None else f"{elo:.0f}"


class Trainer:
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
        self.replay = ReplayWindow(cfg.replay_capacity)
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
            if self.stop.requested:
                log.info("[TRAIN] stopped (%s); last commit %s", self.stop.reason, (self.head or "")[:8])
            return self.state
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            close_world(self.world)

    def _keep_going(self, cycles_done: int, t0: float) -> bool:
        """Another cycle? Every rank must agree, or the collectives would hang."""
        go = self._budget_left(cycles_done, t0) and not self.stop.requested
        return not any_rank(not go, self.world)

    def _selfplay_layout(self) -> tuple[int, list[str]]:
        """Workers and devices of this rank's self-play pool."""
        if self.world.active:
            if self.device.startswith("cuda"):
                return self.cfg.workers or 1, [self.device]
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
            self.replay = ReplayWindow(self.cfg.replay_capacity)
            for chunk in chunks:
                self.replay.add(chunk)

    def _budget_left(self, cycles_done: int, t0: float) -> bool:
        if self.cfg.cycles is not None and cycles_done >= self.cfg.cycles:
            return False
        if self.cfg.hours is not None and time.time() - t0 >= self.cfg.hours * 3600:
            return False
        return True

    # -- start: init or resume ------------------------------------------------
    def _start(self) -> None:
        pending = self.outbox.entries()
        try:
            head = self.hub.head()
        except HubUnavailable as e:
            if pending:
                log.warning("[HF] hub unreachable (%s); continuing from cycle %d, which an earlier run left on disk",
                            e, pending[-1].cycle)
                if self._resume_pending(pending):
                    return
            cached = getattr(self.hub, "cached_head", lambda: None)()
            if cached is None:
                raise TrainError(f"hub {self.hub.uri} is unreachable ({e}) and nothing of it is cached here; "
                                 "try again when it is reachable") from e
            if pending:
                log.warning("[ML] starting from the cached commit %s instead", cached[:8])
            else:
                log.warning("[HF] hub unreachable (%s); starting from the cached commit %s", e, cached[:8])
            self._resume(cached, offline=True)
            return
        if pending and self._resume_pending(pending):
            try:
                self._flush_outbox()
                return
            except HubNotFound as e:  # the commit they were made on is gone (repo deleted and re-created?)
                log.warning("[SAVE] dropped cycle(s) %s left on disk by an earlier run: %s",
                            _cycles_text([p.cycle for p in self.outbox.entries()]), e)
                self.outbox.clear()
        if head is None or MODEL_FILE not in self.hub.list_files(head):
            self._initialise(head)
        else:
            self._resume(head)

    def _initialise(self, head: str | None) -> None:
        self.net_cfg = NetConfig.from_name(self.cfg.net or "small")
        torch.manual_seed(self.cfg.seed)
        self.net = build_network(self.net_cfg, self.cfg.seed).to(self.device)
        self.learner = Learner(self.net, self.cfg.learner, self.device)
        self.state = TrainingState(config=_config_record(self.cfg))
        files = self._save_files(best=False)
        try:
            info = self.hub.commit(files, INITIAL_MESSAGE, parent=head)
        except HubConflict as e:  # another trainer started on the same empty hub a moment earlier
            theirs = e.head or self.hub.head()
            log.warning("[SAVE] another trainer initialised %s first (commit %s); continuing from its weights",
                        self.hub.uri, (theirs or "")[:8])
            self._resume(theirs)
            return
        self.head = info.id
        self.base_state = weights_dict(self.net, self.net_cfg)["state_dict"]
        log.info("[SAVE] empty hub %s: created random initial weights (%s) and committed them as %s",
                 self.hub.uri, self.net_cfg.name, info.id[:8])
        log.info("[ML] future runs will fine-tune from these weights")

    def _resume(self, head: str, offline: bool = False) -> None:
        """Continue from ``head``, or from the newest earlier commit whose files all load."""
        if offline:  # no history without the Hub: the cached commit, pinned (cached files need no network)
            commit = head
            paths = [self.hub.download(name, head) for name in (MODEL_FILE, STATE_FILE, METRICS_FILE)]
        else:
            commit, *paths = self._newest_usable(head)
        self._load_checkpoint(*paths)
        self._load_replay(self.state.replay_chunks, commit)
        self.head = head
        log.info("[ML] resuming from commit %s: cycle %d, Elo ~%s, network %s, %d positions in the replay window",
                 commit[:8], self.state.cycle, _elo_text(self.state.elo), self.net_cfg.name,
                 self.replay.train_positions)

    def _resume_pending(self, pending: list[Pending]) -> bool:
        """Continue from the newest cycle an earlier run left on disk, on the commit the hub was at then.

        False (and the entries dropped, with a log line) when they do not load.
        """
        last = pending[-1]
        try:
            self._load_checkpoint(last.files.get(MODEL_FILE), last.files.get(STATE_FILE), last.files.get(METRICS_FILE))
        except (WeightsError, StateError) as e:  # a TrainError (say, --net of another size) keeps them
            log.warning("[SAVE] dropped cycle(s) %s left on disk by an earlier run in %s: unusable (%s)",
                        _cycles_text([p.cycle for p in pending]), self.outbox.path, e)
            self.outbox.clear()
            return False
        local = {n: p for entry in pending for n, p in entry.files.items() if n.startswith(REPLAY_DIR + "/")}
        self._load_replay(self.state.replay_chunks, last.parent, local)
        self.head = last.parent
        try:  # the weights they started from, for a merge should the hub have moved on
            base = self.hub.download(MODEL_FILE, last.parent) if last.parent else None
            if base is not None:
                self.base_state = read_weights(base)[1]
        except (HubError, WeightsError) as e:
            log.warning("[ML] weights of commit %s are unavailable (%s); a merge would keep the other trainer's",
                        (last.parent or "")[:8], e)
        log.info("[ML] continuing from cycle %d, left on disk by an earlier run: %d commit(s) waiting to go up on "
                 "top of %s", last.cycle, len(pending), (last.parent or "an empty hub")[:8])
        return True

    def _load_checkpoint(self, model: Path | None, state: Path | None, metrics: Path | None) -> None:
        """Network, learner, counters, RNG and metrics from a commit's files."""
        if model is None:
            raise TrainError(f"no model.pt to resume from in {self.hub.uri}; roll back or use another --hub")
        cfg, state_dict = read_weights(model)
        if self.cfg.net is not None and NetConfig.from_name(self.cfg.net) != cfg:
            raise TrainError(
                f"hub {self.hub.uri} holds {cfg.name} weights but --net {self.cfg.net} was asked for; "
                "drop --net to continue that run, or use another --hub"
            )
        self.net_cfg = cfg
        self.net = build_network(cfg).to(self.device)
        self.net.load_state_dict(state_dict)
        self.base_state = {k: v.clone() for k, v in state_dict.items()}
        self.learner = Learner(self.net, self.cfg.learner, self.device)
        self.state = TrainingState.load(state) if state is not None else TrainingState()
        if self.state.learner:
            self.learner.load_state_dict(self.state.learner)
        if self.state.numpy_rng:
            self.rng.bit_generator.state = self.state.numpy_rng
        if self.state.torch_rng is not None:
            torch.set_rng_state(self.state.torch_rng)
        self.metrics = read_metrics(metrics)

    def _newest_usable(self, head: str) -> tuple[str, Path, Path | None, Path | None]:
        """``(commit, model, state, metrics)`` of head, or of the newest earlier commit when head's are damaged."""
        for info in self.hub.history():
            try:
                model = self.hub.download(MODEL_FILE, info.id)
                if model is None:
                    continue
                read_weights(model)
                state = self.hub.download(STATE_FILE, info.id)
                if state is not None:
                    TrainingState.load(state)
                metrics = self.hub.download(METRICS_FILE, info.id)
                read_metrics(metrics)
            except (CorruptFile, WeightsError, StateError) as e:
                log.warning("[ML] commit %s is unusable (%s); trying the commit before it", info.id[:8], e)
                continue
            if info.id != head:
                log.warning("[ML] using commit %s, the newest good one; the next commit goes on top of %s",
                            info.id[:8], head[:8])
            return info.id, model, state, metrics
        raise TrainError(f"no usable model.pt in any commit of {self.hub.uri}; roll back or use another --hub")

    def _load_replay(self, names: list[str], commit: str | None, local: dict[str, Path] | None = None) -> None:
        for name in names:
            if name in self.replay.names:
                continue
            try:
                path = (local or {}).get(replay_file(name)) or self.hub.download(replay_file(name), commit)
                if path is None:
                    log.warning("[ML] replay chunk %s is missing from the hub; continuing without it", name)
                    continue
                self.replay.add(ReplayChunk.load(path))
            except (HubError, ValueError) as e:
                log.warning("[ML] replay chunk %s is unusable (%s); continuing without it", name, e)

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
        with tqdm(total=share, desc="[TRAIN] self-play", unit="game", ascii=True, disable=None if main else True,
                  leave=False) as bar:
            games = pool.play(state_dict, share, seed, on_game=lambda _: bar.update(1), should_stop=self.stop,
                              cfg=self._selfplay_config())
        games = gather_lists(games, world)
        if any_rank(self.stop.requested, world) and not self.stop.requested:
            self.stop.request("another rank stopped")
        t_play = time.time() - t0
        chunk = None
        name = broadcast(f"{cycle:06d}-{uuid.uuid4().hex[:8]}", world)
        if games:
            chunk = ReplayChunk.from_games(name, games)
            self.replay.add(chunk)
            log.info("[TRAIN] cycle %d: %d games, %d positions in %.0fs (%.0f games/h); results %s",
                     cycle, len(games), len(chunk), t_play, len(games) / t_play * 3600, _terminations(games))
        losses = None
        sample_rng = np.random.default_rng([int(self.rng.integers(2**31)), world.rank])
        if self.replay.train_positions and self.cfg.steps and not self.stop.requested:
            with tqdm(total=self.cfg.steps, desc="[TRAIN] backprop", unit="step", ascii=True,
                      disable=None if main else True, leave=False) as bar:
                losses = self.learner.train_steps(self.replay, self.cfg.steps, sample_rng,
                                                  on_step=lambda *_: bar.update(1),
                                                  should_stop=lambda: any_rank(self.stop.requested, world))
        val = self.learner.validation_losses(self.replay)
        log.info("[LOSS] cycle %d: train %s, validation %s", cycle, _fmt_losses(losses), _fmt_losses(val))
        if main:
            elo = None if self.stop.requested else self._measure_elo(cycle)
            self._finish_cycle(cycle, games, chunk, losses, val, elo, time.time() - t0)
        self._share_after_commit()

    def _selfplay_config(self) -> SelfPlayConfig:
        """Resignation only once played-out games show it is rarely wrong (KataGo and Lc0 check the same)."""
        st, cfg = self.state, self.cfg.selfplay
        trusted = st.resign_checks >= RESIGN_MIN_CHECKS and st.false_resigns <= RESIGN_MAX_FALSE * st.resign_checks
        return cfg if trusted else dataclasses.replace(cfg, resign_playthrough=1.0)

    def _count_resign_checks(self, games: list) -> None:
        st = self.state
        st.resign_checks = RESIGN_DECAY * st.resign_checks + sum(g.would_resign for g in games)
        st.false_resigns = RESIGN_DECAY * st.false_resigns + sum(g.false_resign for g in games)
        if st.resign_checks:
            log.info("[TRAIN] resignation check: %.0f%% false over %.0f recent played-out games (resigning %s)",
                     100 * st.false_resigns / st.resign_checks, st.resign_checks,
                     "on" if self._selfplay_config().resign_playthrough < 1.0 else "off")

    def _measure_elo(self, cycle: int):
        if self.cfg.elo_seconds <= 0:
            return None
        from l4demons.elo import PlayerSpec, quick_estimate

        path = self.workdir / f"candidate-{cycle}.pt"
        save_weights(self.net, self.net_cfg, path)
        est = quick_estimate(PlayerSpec.net(path, nodes=self.cfg.elo_nodes), prior_elo=self.state.elo,
                             time_budget_s=self.cfg.elo_seconds, max_games=self.cfg.elo_games, seed=cycle)
        log.info("[ELO] cycle %d: %.0f (95%% %.0f..%.0f) from %d games in %.0fs: %s", cycle, est.elo, est.lo, est.hi,
                 est.games, est.seconds, ", ".join(f"{o.name} {o.wins}/{o.draws}/{o.losses}" for o in est.per_opponent))
        return est

    def _finish_cycle(self, cycle, games, chunk, losses, val, elo, seconds) -> None:
        interrupted = self.stop.requested
        st = self.state
        st.cycle = cycle
        st.games += len(games)
        self._count_resign_checks(games)
        st.positions += len(chunk) if chunk else 0
        st.hours += seconds / 3600
        if chunk is not None:
            st.replay_chunks = self.replay.names
        if elo is not None:
            st.elo = elo.elo
        loss = losses.total if losses else (val.total if val else None)
        best = val is not None and (st.best_val_loss is None or val.total < st.best_val_loss)
        if best:
            st.best_val_loss = val.total
        row = {
            "cycle": cycle, "games": len(games), "positions": len(chunk) if chunk else 0,
            "steps": self.learner.step, "train_loss": losses.total if losses else None,
            "train_policy": losses.policy if losses else None, "train_value": losses.value if losses else None,
            "val_loss": val.total if val else None, "val_policy": val.policy if val else None,
            "val_value": val.value if val else None, "seconds": round(seconds, 1), "hours": round(st.hours, 4),
            "machine": machine_name(), "time": time.time(), "interrupted": interrupted,
            **(elo.as_metrics() if elo is not None else {"elo": None}),
        }
        self.metrics.append(row)
        loss_text = "n/a" if loss is None else f"{loss:.4f}"
        message = f"Training cycle {cycle}, Elo ~{_elo_text(elo.elo if elo else None)}, Loss {loss_text}"
        if interrupted:
            message += " (interrupted)"
        if best:
            message += f"\n\nBest model - cycle {cycle}, loss={val.total:.4f}, Elo ~{_elo_text(elo.elo if elo else None)}"
        self._commit(message, chunk, best)

    # -- saving and committing ------------------------------------------------
    def _save_files(self, best: bool, chunk: ReplayChunk | None = None) -> dict[str, Path]:
        st = self.state
        st.learner = self.learner.state_dict()
        st.torch_rng = torch.get_rng_state()
        st.numpy_rng = self.rng.bit_generator.state
        st.config = _config_record(self.cfg)
        d = self.workdir
        files = {MODEL_FILE: d / MODEL_FILE, STATE_FILE: d / STATE_FILE, METRICS_FILE: d / METRICS_FILE}
        save_weights(self.net, self.net_cfg, files[MODEL_FILE])
        st.save(files[STATE_FILE])
        write_metrics(self.metrics, files[METRICS_FILE])
        if best:
            shutil.copyfile(files[MODEL_FILE], d / BEST_FILE)
            files[BEST_FILE] = d / BEST_FILE
        if chunk is not None:
            files[replay_file(chunk.name)] = d / replay_file(chunk.name)
            chunk.save(files[replay_file(chunk.name)])
        card = d / CARD_FILE
        card.write_text(render_model_card(self.hub.uri, self.net_cfg, st.config, self.metrics), encoding="utf-8")
        files[CARD_FILE] = card
        return files

    def _commit(self, message: str, chunk: ReplayChunk | None, best: bool) -> None:
        """Upload this cycle: in turn behind cycles still waiting on disk, else at once."""
        if self.outbox:
            self.outbox.stash(self._save_files(best, chunk), message, self.head, self.state.cycle)
            self._flush_outbox()
        else:
            self._upload(message, best, chunk, cycles=[self.state.cycle])

    def _upload(self, message: str, best: bool, chunk: ReplayChunk | None, cycles: list[int],
                extra: dict[str, Path] | None = None, merges: int = 0) -> bool:
        """Commit the checkpoint in memory on ``self.head``; on a moved head merge and retry.

        ``extra`` are files to upload besides the checkpoint (replay chunks of
        merged cycles). An unreachable hub leaves the commit in the outbox.
        """
        while True:
            files = {**(extra or {}), **self._save_files(best, chunk)}
            try:
                info = self.hub.commit(files, message, parent=self.head)
            except HubConflict as e:
                if merges == MAX_MERGES:
                    log.error("[SAVE] dropped cycle %s of %s: the hub kept moving after %d merges (its weights live "
                              "on in this run's next cycle)", _cycles_text(cycles), machine_name(), MAX_MERGES)
                    return False
                merges += 1
                message, best = self._merge_head(e.head, message, cycles)
                cycles = [self.state.cycle]
                continue
            except HubUnavailable as e:
                self.outbox.stash(files, message, self.head, self.state.cycle)
                log.warning("[SAVE] hub unreachable (%s): cycle %d stays on disk in %s and goes up with the next "
                            "successful upload (this run or the next)", e, self.state.cycle, self.outbox.path)
                return False
            except HubAuthError as e:
                self.outbox.stash(files, message, self.head, self.state.cycle)
                raise TrainError(f"{e} Cycle {self.state.cycle} stays on disk in {self.outbox.path} and goes up "
                                 "with the next run whose token can write.") from e
            self.head = info.id
            self.base_state = weights_dict(self.net, self.net_cfg)["state_dict"]
            log.info("[SAVE] %s -> commit %s%s", message.splitlines()[0], info.id[:8], " (+ model_best.pt)" if best else "")
            return True

    def _flush_outbox(self) -> None:
        """Upload the commits waiting on disk, oldest first; the checkpoint in memory is the newest of them.

        On a hub that moved on, the waiting cycles are merged as one onto its
        head (the merge policy), carrying all their replay chunks.
        """
        pending = self.outbox.entries()
        for i, entry in enumerate(pending):
            title = entry.message.splitlines()[0]
            try:
                commit_id = self.hub.commit(entry.files, entry.message, parent=self.head).id
            except HubConflict as e:
                commit_id = self._landed(entry)
                if commit_id is None:
                    self._merge_pending(pending[i:], e.head)
                    return
                log.info("[SAVE] %s had gone up before its run ended (or lost the answer): commit %s",
                         title, commit_id[:8])
            except HubUnavailable as e:
                log.warning("[SAVE] hub unreachable (%s): cycle(s) %s stay on disk in %s and go up with the next "
                            "successful upload (this run or the next)",
                            e, _cycles_text([p.cycle for p in pending[i:]]), self.outbox.path)
                return
            except HubAuthError as e:
                raise TrainError(f"{e} Cycle(s) {_cycles_text([p.cycle for p in pending[i:]])} stay on disk in "
                                 f"{self.outbox.path} and go up with the next run whose token can write.") from e
            else:
                log.info("[SAVE] %s -> commit %s (left on disk until now)%s", title, commit_id[:8],
                         " (+ model_best.pt)" if BEST_FILE in entry.files else "")
            self.outbox.remove(entry)
            self.head = commit_id
        self.base_state = weights_dict(self.net, self.net_cfg)["state_dict"]

    def _landed(self, entry: Pending) -> str | None:
        """The hub's commit of ``entry`` when it went up but was never crossed off (a kill, a lost answer)."""
        try:
            recent = self.hub.history(limit=len(self.outbox.entries()) + 8)
        except HubError:
            return None
        for c in recent:
            if c.parent == self.head and c.message.strip() == entry.message.strip():
                return c.id
        return None

    def _merge_pending(self, waiting: list[Pending], head: str | None) -> None:
        """The waiting cycles met a moved head: merge the newest (which holds them all) onto it, as one commit."""
        carried = self.workdir / "carried"
        extra = {}
        for entry in waiting:
            for name, path in entry.files.items():
                if name.startswith(REPLAY_DIR + "/"):
                    extra[name] = carried / name
                    extra[name].parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, extra[name])
        cycles = [p.cycle for p in waiting]
        message, best = self._merge_head(head, waiting[-1].message, cycles)
        for entry in waiting:  # superseded by the merged commit (stashed again should the upload fail)
            self.outbox.remove(entry)
        self._upload(message, best, None, [self.state.cycle], extra, merges=1)

    def _merge_head(self, head: str | None, message: str, cycles: list[int]) -> tuple[str, bool]:
        """Merge this trainer's cycle(s) onto the head another trainer committed; the new message and best flag."""
        head = head or self.hub.head()
        their_cfg, theirs = read_weights(self.hub.download(MODEL_FILE, head))
        if their_cfg != self.net_cfg:
            raise TrainError(f"hub {self.hub.uri} now holds {their_cfg.name} weights, this run trains "
                             f"{self.net_cfg.name}; cannot merge cycle {self.state.cycle}")
        ours = weights_dict(self.net, self.net_cfg)["state_dict"]
        base = self.base_state if self.base_state is not None else ours
        merged, new_base = merge_weights(theirs, ours, base)
        raw = getattr(self.net, "module", self.net)
        raw.load_state_dict(merged)
        self.base_state = new_base
        their_state_path = self.hub.download(STATE_FILE, head)
        their_state = TrainingState.load(their_state_path) if their_state_path else TrainingState()
        their_metrics = read_metrics(self.hub.download(METRICS_FILE, head))
        own_cycle = self.state.cycle
        new_cycle = their_state.cycle + 1
        row = dict(self.metrics[-1], cycle=new_cycle, merged_onto=head[:8], merged_from_cycle=own_cycle)
        self.metrics = their_metrics + [row]
        self._load_replay(their_state.replay_chunks, head)
        self.state.replay_chunks = self.replay.names
        self.state.cycle = new_cycle
        self.state.games = their_state.games + row["games"]
        self.state.positions = their_state.positions + row["positions"]
        best_theirs = their_state.best_val_loss
        best = row.get("val_loss") is not None and (best_theirs is None or row["val_loss"] < best_theirs)
        known = [x for x in (best_theirs, row.get("val_loss")) if x is not None]
        self.state.best_val_loss = min(known) if known else None
        self.head = head
        title = message.splitlines()[0].replace(f"Training cycle {own_cycle},", f"Training cycle {new_cycle},")
        log.warning("[SAVE] another trainer committed %s (cycle %d) first; merged this machine's cycle %s onto it as "
                    "cycle %d (weights: theirs + 1/2 of our delta)", head[:8], their_state.cycle,
                    _cycles_text(cycles), new_cycle)
        if best:
            title += f"\n\nBest model - cycle {new_cycle}, loss={row['val_loss']:.4f}, Elo ~{_elo_text(row.get('elo'))}"
        return title, best


def _cycles_text(cycles: list[int]) -> str:
    return ", ".join(str(c) for c in cycles)


def _fmt_losses(losses: Losses | None) -> str:
    if losses is None:
        return "n/a"
    return f"{losses.total:.4f} (policy {losses.policy:.4f}, value {losses.value:.4f})"


def _terminations(games) -> str:
    counts: dict[str, int] = {}
    for g in games:
        counts[g.termination] = counts.get(g.termination, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _config_record(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("hub", None)
    return d


def _resolve_device(device: str) -> str:
    try:
        return resolve_device(device)
    except ValueError as e:
        raise TrainError(str(e)) from e
