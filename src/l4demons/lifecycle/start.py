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
newest cached commit.

A part of the run (:mod:`.run_state`): :func:`start` fills a
:class:`RunState` that holds only its surroundings; it commits through the
run's :class:`~l4demons.lifecycle.commit.Committer` (the initial commit, the
cycles an earlier run left on disk).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from l4demons.checkpoint import (METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, REPLAY_DIR, STATE_FILE, StateError,
                                 TrainingState, load_optimizer_parts, read_metrics, replay_file)
from l4demons.hub import CorruptFile, HubConflict, HubError, HubNotFound, HubUnavailable
from l4demons.lifecycle.budgets import window_size
from l4demons.lifecycle.config import config_record
from l4demons.lifecycle.common import INITIAL_MESSAGE, TrainError, cycles_text, elo_text, machine_name
from l4demons.lifecycle.run_state import RunState
from l4demons.network import NetConfig, WeightsError, default_net, read_weights
from l4demons.outbox import Pending
from l4demons.replay import ReplayChunk

if TYPE_CHECKING:
    from l4demons.lifecycle.commit import Committer

log = logging.getLogger("l4demons.train")

RESUME_DEPTH = 20
"""Newest commits a resume tries before giving up on a damaged head."""


def start(run: RunState, committer: Committer) -> None:
    """Fill ``run`` from its hub: the initial commit on an empty hub, else a resume (see the module docstring).

    An empty hub's net is ``--net``'s size, else the device's default, for self-play and a warm start alike
    (:func:`l4demons.network.default_net`).
    """
    pending = run.outbox.entries()
    try:
        head = run.hub.head()
    except HubUnavailable as e:
        if pending:
            log.warning("[HF] hub unreachable (%s); continuing from cycle %d, which an earlier run left on disk",
                        e, pending[-1].cycle)
            if _resume_pending(run, pending):
                return
        cached = getattr(run.hub, "cached_head", lambda: None)()
        if cached is None:
            raise TrainError(f"hub {run.hub.uri} is unreachable ({e}) and nothing of it is cached here; "
                             "try again when it is reachable") from e
        if pending:
            log.warning("[ML] starting from the cached commit %s instead", cached[:8])
        else:
            log.warning("[HF] hub unreachable (%s); starting from the cached commit %s", e, cached[:8])
        resume(run, cached, offline=True)
        return
    if pending and _resume_pending(run, pending):
        try:
            committer.flush_outbox()
            return
        except HubNotFound as e:  # the commit they were made on is gone (repo deleted and re-created?)
            log.warning("[SAVE] dropped cycle(s) %s left on disk by an earlier run: %s",
                        cycles_text([p.cycle for p in run.outbox.entries()]), e)
            run.outbox.clear()
    if head is None or MODEL_FILE not in run.hub.list_files(head):
        _initialise(run, committer, head, run.cfg.net or default_net(run.device))
    else:
        resume(run, head)


def _initialise(run: RunState, committer: Committer, head: str | None, net: str) -> None:
    torch.manual_seed(run.cfg.seed)
    run.build_net(NetConfig.from_name(net), seed=run.cfg.seed)
    run.state = TrainingState(config=config_record(run.cfg),
                              initialised_by=f"{machine_name()} {uuid.uuid4().hex[:12]}")
    try:
        info = committer.attempt(committer.save_files(), INITIAL_MESSAGE, head)
    except HubConflict as e:  # another trainer started on the same empty hub a moment earlier
        theirs = e.head or run.hub.head()
        log.warning("[SAVE] another trainer initialised %s first (commit %s); continuing from its weights",
                    run.hub.uri, (theirs or "")[:8])
        resume(run, theirs)
        return
    run.mark_committed(info.id)
    log.info("[SAVE] empty hub %s: created random initial weights (%s) and committed them as %s",
             run.hub.uri, run.net_cfg.name, info.id[:8])
    log.info("[ML] future runs will fine-tune from these weights")


def resume(run: RunState, head: str, offline: bool = False) -> None:
    """Continue from ``head``, or from the newest earlier commit whose files all load."""
    if offline:  # no history without the Hub: the cached commit, pinned (cached files need no network)
        commit = head
        paths = [run.hub.download(name, head) for name in (MODEL_FILE, STATE_FILE, METRICS_FILE)]
        paths.append(_optional(run, OPTIMIZER_FILE, head))
    else:
        commit, *paths = _newest_usable(run, head)
    _load_checkpoint(run, *paths)
    load_replay(run, run.state.replay_chunks, commit)
    run.head = head
    log.info("[ML] hub %s: resuming from commit %s: cycle %d, Elo ~%s, network %s, %d positions in the replay "
             "window", run.hub.uri, commit[:8], run.state.cycle, elo_text(run.state.elo), run.net_cfg.name,
             run.replay.train_positions)


def _resume_pending(run: RunState, pending: list[Pending]) -> bool:
    """Continue from the newest cycle an earlier run left on disk, on the commit the hub was at then.

    False (and the entries dropped, with a log line) when they do not load.
    """
    last = pending[-1]
    try:
        _load_checkpoint(run, last.files.get(MODEL_FILE), last.files.get(STATE_FILE), last.files.get(METRICS_FILE),
                         last.files.get(OPTIMIZER_FILE))
    except (WeightsError, StateError) as e:  # a TrainError (say, --net of another size) keeps them
        log.warning("[SAVE] dropped cycle(s) %s left on disk by an earlier run in %s: unusable (%s)",
                    cycles_text([p.cycle for p in pending]), run.outbox.path, e)
        run.outbox.clear()
        return False
    local = {n: p for entry in pending for n, p in entry.files.items() if n.startswith(REPLAY_DIR + "/")}
    load_replay(run, run.state.replay_chunks, last.parent, local)
    run.head = last.parent
    try:  # the weights they started from, for a merge should the hub have moved on
        base = run.hub.download(MODEL_FILE, last.parent) if last.parent else None
        if base is not None:
            run.base_state = read_weights(base)[1]
    except (HubError, WeightsError) as e:
        log.warning("[ML] weights of commit %s are unavailable (%s); a merge would keep the other trainer's",
                    (last.parent or "")[:8], e)
    log.info("[ML] continuing from cycle %d, left on disk by an earlier run: %d commit(s) waiting to go up on "
             "top of %s", last.cycle, len(pending), (last.parent or "an empty hub")[:8])
    return True


def _load_checkpoint(run: RunState, model: Path | None, state: Path | None, metrics: Path | None,
                     optimizer: Path | None = None) -> None:
    """Network, learner, counters, RNG and metrics from a commit's files."""
    if model is None:
        raise TrainError(f"no model.pt to resume from in {run.hub.uri}; roll back or use another --hub")
    cfg, state_dict = read_weights(model)
    if run.cfg.net is not None and NetConfig.from_name(run.cfg.net) != cfg:
        raise TrainError(
            f"hub {run.hub.uri} holds {cfg.name} weights but --net {run.cfg.net} was asked for; "
            "drop --net to continue that run, or use another --hub"
        )
    run.build_net(cfg, state_dict)
    run.base_state = {k: v.clone() for k, v in state_dict.items()}
    run.state = TrainingState.load(state) if state is not None else TrainingState()
    if run.state.learner:
        _load_learner(run, dict(run.state.learner), optimizer)
    if run.state.numpy_rng:
        run.rng.bit_generator.state = run.state.numpy_rng
    if run.state.torch_rng is not None:
        torch.set_rng_state(run.state.torch_rng)
    run.metrics = read_metrics(metrics)
    # The window as large as it had grown: the chunks the state names must all fit when they load.
    run.replay.capacity = window_size(run.state.train_positions, run.cfg.window)


def _load_learner(run: RunState, learner: dict, optimizer: Path | None) -> None:
    """Scheduler and step from the training state; the optimizer and the average of recent weights from it
    (older commits) or ``optimizer.pt``."""
    if "optimizer" not in learner and optimizer is not None:
        try:
            learner.update(load_optimizer_parts(optimizer))
        except StateError as e:
            log.warning("[ML] the optimizer state is unusable (%s)", e)
    if "optimizer" in learner:
        run.learner.load_state_dict(learner)
        run.state.learner = learner  # whole, as other ranks load it
        return
    log.warning("[ML] no optimizer state to resume: a fresh optimizer starts at step %d", int(learner["step"]))
    run.learner.load_schedule(learner)


def _optional(run: RunState, name: str, commit: str) -> Path | None:
    """A file a resume can do without: None (and a log line) when it is missing or damaged."""
    try:
        return run.hub.download(name, commit)
    except (CorruptFile, HubNotFound, HubUnavailable) as e:
        log.warning("[ML] %s of commit %s is unavailable (%s); going on without it", name, commit[:8], e)
        return None


def _newest_usable(run: RunState, head: str) -> tuple[str, Path, Path | None, Path | None, Path | None]:
    """``(commit, model, state, metrics, optimizer)`` of head, or of the newest earlier commit when head's are damaged."""
    for info in run.hub.history(limit=RESUME_DEPTH):
        try:
            model = run.hub.download(MODEL_FILE, info.id)
            if model is None:
                continue
            read_weights(model)
            state = run.hub.download(STATE_FILE, info.id)
            if state is not None:
                TrainingState.load(state)
            metrics = run.hub.download(METRICS_FILE, info.id)
            read_metrics(metrics)
        except (CorruptFile, WeightsError, StateError) as e:
            log.warning("[ML] commit %s is unusable (%s); trying the commit before it", info.id[:8], e)
            continue
        if info.id != head:
            log.warning("[ML] using commit %s, the newest good one; the next commit goes on top of %s",
                        info.id[:8], head[:8])
        return info.id, model, state, metrics, _optional(run, OPTIMIZER_FILE, info.id)
    raise TrainError(f"no usable model.pt in the newest {RESUME_DEPTH} commits of {run.hub.uri}; roll back to an "
                     "older good commit (`l4demons history`, `l4demons rollback REV`) or use another --hub")


def load_replay(run: RunState, names: list[str], commit: str | None, local: dict[str, Path] | None = None) -> None:
    """Add the replay chunks ``names`` of ``commit`` (or of ``local`` files) the window does not hold yet."""
    for name in names:
        if name in run.replay.names:
            continue
        try:
            path = (local or {}).get(replay_file(name)) or run.hub.download(replay_file(name), commit)
            if path is None:
                log.warning("[ML] replay chunk %s is missing from the hub; continuing without it", name)
                continue
            run.replay.add(ReplayChunk.load(path))
        except (HubError, ValueError) as e:
            log.warning("[ML] replay chunk %s is unusable (%s); continuing without it", name, e)
