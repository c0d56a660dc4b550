"""Start of a run: initialise an empty hub, or resume from the newest usable commit.

On an empty hub: random initial weights, committed at once. Otherwise the
newest commit whose files all load (weights, training state, metrics; a
damaged commit is named in a log line and skipped, the next commit still
going on top of the head), its replay window, its optimizer and RNG state.
Only the newest ``RESUME_DEPTH`` commits are read: a hub's history grows
without end, and a head that bad needs a person (`l4demons rollback`).
The optimizer state is its own file; a commit without a usable one (pruned,
or left behind by a stop) resumes with a fresh optimizer and says so.
An unreachable hub: the cycles an earlier run left in the outbox, else the
newest cached commit. Mixed into :class:`l4demons.lifecycle.trainer.Trainer`.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import torch

from l4demons.checkpoint import (METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, REPLAY_DIR, STATE_FILE, StateError,
                                 TrainingState, load_optimizer, read_metrics, replay_file)
from l4demons.hub import CorruptFile, HubConflict, HubError, HubNotFound, HubUnavailable
from l4demons.learner import Learner
from l4demons.lifecycle.config import config_record
from l4demons.lifecycle.common import INITIAL_MESSAGE, TrainError, cycles_text, elo_text, machine_name
from l4demons.network import NetConfig, WeightsError, build_network, read_weights, weights_dict
from l4demons.outbox import Pending
from l4demons.replay import ReplayChunk

log = logging.getLogger("l4demons.train")

RESUME_DEPTH = 20
"""Newest commits a resume tries before giving up on a damaged head."""


class StartMixin:
    """Init or resume; see the module docstring."""

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
                            cycles_text([p.cycle for p in self.outbox.entries()]), e)
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
        self.state = TrainingState(config=config_record(self.cfg),
                                   initialised_by=f"{machine_name()} {uuid.uuid4().hex[:12]}")
        files = self._save_files(best=False)
        try:
            info = self._attempt(files, INITIAL_MESSAGE, head)
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
            paths.append(self._optional(OPTIMIZER_FILE, head))
        else:
            commit, *paths = self._newest_usable(head)
        self._load_checkpoint(*paths)
        self._load_replay(self.state.replay_chunks, commit)
        self.head = head
        log.info("[ML] hub %s: resuming from commit %s: cycle %d, Elo ~%s, network %s, %d positions in the replay "
                 "window", self.hub.uri, commit[:8], self.state.cycle, elo_text(self.state.elo), self.net_cfg.name,
                 self.replay.train_positions)

    def _resume_pending(self, pending: list[Pending]) -> bool:
        """Continue from the newest cycle an earlier run left on disk, on the commit the hub was at then.

        False (and the entries dropped, with a log line) when they do not load.
        """
        last = pending[-1]
        try:
            self._load_checkpoint(last.files.get(MODEL_FILE), last.files.get(STATE_FILE), last.files.get(METRICS_FILE),
                                  last.files.get(OPTIMIZER_FILE))
        except (WeightsError, StateError) as e:  # a TrainError (say, --net of another size) keeps them
            log.warning("[SAVE] dropped cycle(s) %s left on disk by an earlier run in %s: unusable (%s)",
                        cycles_text([p.cycle for p in pending]), self.outbox.path, e)
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

    def _load_checkpoint(self, model: Path | None, state: Path | None, metrics: Path | None,
                         optimizer: Path | None = None) -> None:
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
            self._load_learner(dict(self.state.learner), optimizer)
        if self.state.numpy_rng:
            self.rng.bit_generator.state = self.state.numpy_rng
        if self.state.torch_rng is not None:
            torch.set_rng_state(self.state.torch_rng)
        self.metrics = read_metrics(metrics)

    def _load_learner(self, learner: dict, optimizer: Path | None) -> None:
        """Scheduler and step from the training state; the optimizer from it (older commits) or ``optimizer.pt``."""
        if "optimizer" not in learner and optimizer is not None:
            try:
                learner["optimizer"] = load_optimizer(optimizer)
            except StateError as e:
                log.warning("[ML] the optimizer state is unusable (%s)", e)
        if "optimizer" in learner:
            self.learner.load_state_dict(learner)
            self.state.learner = learner  # whole, as other ranks load it
            return
        log.warning("[ML] no optimizer state to resume: a fresh optimizer starts at step %d", int(learner["step"]))
        self.learner.scheduler.load_state_dict(learner["scheduler"])
        self.learner.step = int(learner["step"])

    def _optional(self, name: str, commit: str) -> Path | None:
        """A file a resume can do without: None (and a log line) when it is missing or damaged."""
        try:
            return self.hub.download(name, commit)
        except (CorruptFile, HubNotFound, HubUnavailable) as e:
            log.warning("[ML] %s of commit %s is unavailable (%s); going on without it", name, commit[:8], e)
            return None

    def _newest_usable(self, head: str) -> tuple[str, Path, Path | None, Path | None, Path | None]:
        """``(commit, model, state, metrics, optimizer)`` of head, or of the newest earlier commit when head's are damaged."""
        for info in self.hub.history(limit=RESUME_DEPTH):
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
            return info.id, model, state, metrics, self._optional(OPTIMIZER_FILE, info.id)
        raise TrainError(f"no usable model.pt in the newest {RESUME_DEPTH} commits of {self.hub.uri}; roll back to an "
                         "older good commit (`l4demons history`, `l4demons rollback REV`) or use another --hub")

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
