"""Committing a cycle: the files of a commit, the pace of commits, the outbox, merges and pruning.

Pace: a hub limits commits (the Hugging Face Hub: about 128 an hour per
repository, every trainer and merge retry counted). Each commit attempt
takes a token of a :class:`~l4demons.hub.pacing.CommitPacer` (one per
``--commit-interval`` seconds: 180 on ``hf://``, none on a local hub). A
cycle that finds no token waits on disk in the outbox; the next commit that
goes up carries every waiting cycle folded into one: the newest checkpoint,
the replay chunks of all of them, every cycle's metrics row, and a
description naming the folded cycles. The end of a run commits what waits.

Unreachable hub: a commit that cannot go up (network, a failed transfer, a
rate limit, a token without write access) waits in the :class:`Outbox`
likewise, and goes up folded with the next commit that reaches the hub; a
hub that asked to be left alone (``Retry-After``) gets no attempt before then.

Several trainers on one hub (merge policy): every commit names the head it
started from. When the hub answers that another trainer committed first,
this trainer pulls the new head and merges: weights become
``theirs + 1/2 * (ours - base)`` (see :mod:`l4demons.merge`: the hub's commit
stays whole, our cycle's change counts half), this cycle is renumbered
after theirs, the replay windows are united, and the commit is retried (a
retry takes a token too; without one the merged cycle waits on disk). A
merge keeps our delta whole for a further retry (the base moves with it),
so a second conflict adds 1/2 of our delta again, never theirs. After
``MAX_MERGES`` failed tries the cycle is dropped with a log line saying so;
nothing is ever lost silently.

Storage: each commit drops from the head the replay chunks that left the
window, and the optimizer state lives in its own file. With
``--max-repo-gb``, after each commit the hub is pruned under that size
(:meth:`Hub.prune`: old optimizer states and replay chunks go for good,
every ``model.pt`` stays; ``--squash-history`` lets it squash old history).

Stop (a signal): the cycle is put in the outbox first (a kill during the
upload loses nothing), then goes up within ``--stop-seconds`` of the
signal; when the last full upload says the optimizer state would not fit
in the time left, it stays behind and the last commit's one is reused.

A part of the run: :class:`Committer` takes the run's
:class:`~l4demons.lifecycle.run_state.RunState` and keeps only what is its
own (the pacer, whether the hub was reachable, how long an upload takes).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from l4demons.checkpoint import (BEST_FILE, HEAVY_LEARNER_STATE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, REPLAY_DIR,
                                 STATE_FILE, TrainingState, is_replay_file, read_metrics, replay_file, save_optimizer,
                                 write_metrics)
from l4demons.hub import CommitInfo, HubAuthError, HubConflict, HubError, HubNotFound, HubUnavailable
from l4demons.hub.pacing import DEFAULT_HF_INTERVAL, CommitPacer
from l4demons.hub.storage import format_bytes
from l4demons.lifecycle.common import TrainError, cycles_text, machine_name
from l4demons.lifecycle.config import config_record
from l4demons.merge import merge_weights
from l4demons.modelcard import CARD_FILE, render_model_card
from l4demons.network import read_weights, save_weights
from l4demons.lifecycle.run_state import RunState
from l4demons.lifecycle.start import load_replay
from l4demons.outbox import Pending
from l4demons.replay import ReplayChunk

if TYPE_CHECKING:
    from l4demons.lifecycle.best_net import BestNet

log = logging.getLogger("l4demons.train")

MAX_MERGES = 5


def is_heavy(name: str) -> bool:
    """Files no one rolls back to, which pruning may delete from old commits."""
    return name == OPTIMIZER_FILE or is_replay_file(name)


class Committer:
    """Save, pace, upload, queue, merge and prune the run's checkpoint; see the module docstring.

    ``best`` is the run's :class:`~l4demons.lifecycle.best_net.BestNet`: a
    merge takes the other trainer's ``model_best.pt`` as the gate's opponent.
    """

    def __init__(self, run: RunState, best: BestNet) -> None:
        self.run = run
        self.best = best
        interval = run.cfg.commit_interval
        if interval is None:
            interval = DEFAULT_HF_INTERVAL if run.hub.uri.startswith("hf://") else 0.0
        self.pacer = CommitPacer(interval)
        self._unreachable = False
        self._full_upload_s: float | None = None

    # -- saving ---------------------------------------------------------------
    def save_files(self, best: Path | None = None, chunk: ReplayChunk | None = None) -> dict[str, Path]:
        """The checkpoint in memory as commit files in the work folder; ``best``: the weights file that becomes ``model_best.pt``."""
        st = self.run.state
        st.learner = self.run.learner.state_dict()  # whole in memory (other ranks load it); on disk without the optimizer
        st.torch_rng = torch.get_rng_state()
        st.numpy_rng = self.run.rng.bit_generator.state
        st.config = config_record(self.run.cfg)
        d = self.run.workdir
        files = {MODEL_FILE: d / MODEL_FILE, STATE_FILE: d / STATE_FILE, METRICS_FILE: d / METRICS_FILE,
                 OPTIMIZER_FILE: d / OPTIMIZER_FILE}
        save_weights(self.run.net, self.run.net_cfg, files[MODEL_FILE])
        light = {k: v for k, v in st.learner.items() if k not in HEAVY_LEARNER_STATE}
        dataclasses.replace(st, learner=light).save(files[STATE_FILE])
        save_optimizer({k: v for k, v in st.learner.items() if k in HEAVY_LEARNER_STATE}, files[OPTIMIZER_FILE])
        write_metrics(self.run.metrics, files[METRICS_FILE])
        if best is not None:
            shutil.copyfile(best, d / BEST_FILE)
            files[BEST_FILE] = d / BEST_FILE
        if chunk is not None:
            files[replay_file(chunk.name)] = d / replay_file(chunk.name)
            chunk.save(files[replay_file(chunk.name)])
        card = d / CARD_FILE
        card.write_text(render_model_card(self.run.hub.uri, self.run.net_cfg, st.config, self.run.metrics), encoding="utf-8")
        files[CARD_FILE] = card
        return files

    # -- one cycle's commit -----------------------------------------------------
    def commit(self, message: str, chunk: ReplayChunk | None, best: Path | None = None) -> None:
        """Commit this cycle now, or leave it on disk to go up folded into a later commit."""
        if not self.run.stop.requested and not self.run.outbox and self.pacer.ready():
            self._upload(message, best, chunk, cycles=[self.run.state.cycle])
            return
        entry = self.run.outbox.stash(self.save_files(best, chunk), message, self.run.head, self.run.state.cycle)
        self.run.outbox.supersede(entry)
        if self.run.stop.requested:
            self.flush_outbox(stopping=True)
        elif (wait := self.pacer.wait()) > 0:
            log.info("[SAVE] cycle %d saved on disk; it goes up with the next commit, in %.0fs at the earliest "
                     "(--commit-interval)", self.run.state.cycle, wait)
        else:
            self.flush_outbox()

    def commit_waiting(self) -> None:
        """End of the run: commit the cycles waiting on disk, token or not (one commit), unless the hub
        was unreachable at the last try (they wait for the next run)."""
        if self.run.outbox and not self._unreachable:
            self.flush_outbox(stopping=self.run.stop.requested)

    def attempt(self, files: dict[str, Path], message: str, parent: str | None) -> CommitInfo:
        """One commit attempt (a token taken): the files, minus the replay chunks that left the window."""
        self.pacer.take()
        window = {replay_file(n) for n in self.run.state.replay_chunks}
        try:
            stale = [n for n in self.run.hub.list_files(parent) if is_replay_file(n) and n not in window] if parent else []
            t0 = time.monotonic()
            info = self.run.hub.commit(files, message, parent=parent, delete=stale)
        except HubUnavailable as e:
            self._unreachable = True
            if e.retry_after:
                self.pacer.hold(e.retry_after)
            raise
        except HubNotFound as e:  # the parent is gone: another machine pruned or squashed the history
            head = self.run.hub.head()
            if head is None:  # or the whole repository is gone
                raise
            raise HubConflict(f"commit {(parent or '')[:8]} is no longer in {self.run.hub.uri} ({e})", head=head) from e
        self._unreachable = False
        if OPTIMIZER_FILE in files:
            self._full_upload_s = time.monotonic() - t0
        return info

    def _upload(self, message: str, best: Path | None, chunk: ReplayChunk | None, cycles: list[int],
                extra: dict[str, Path] | None = None, merges: int = 0) -> bool:
        """Commit the checkpoint in memory on ``self.run.head``; on a moved head merge and retry.

        ``extra`` are files to upload besides the checkpoint (replay chunks of
        merged cycles). An unreachable hub leaves the commit in the outbox, as
        does a merged cycle whose retry finds no token.
        """
        while True:
            files = {**(extra or {}), **self.save_files(best, chunk)}
            try:
                info = self.attempt(files, message, self.run.head)
            except HubConflict as e:
                if merges == MAX_MERGES:
                    log.error("[SAVE] dropped cycle %s of %s: the hub kept moving after %d merges (its weights live "
                              "on in this run's next cycle)", cycles_text(cycles), machine_name(), MAX_MERGES)
                    return False
                merges += 1
                message, best = self._merge_head(e.head, message, cycles)
                cycles = [self.run.state.cycle]
                if not self.pacer.ready() and not self.run.stop.requested:
                    self.run.outbox.stash({**(extra or {}), **self.save_files(best, chunk)}, message, self.run.head,
                                      self.run.state.cycle)
                    log.info("[SAVE] merged cycle %d saved on disk; it goes up with the next commit "
                             "(--commit-interval)", self.run.state.cycle)
                    return False
                continue
            except HubUnavailable as e:
                self.run.outbox.stash(files, message, self.run.head, self.run.state.cycle)
                log.warning("[SAVE] hub unreachable (%s): cycle %d stays on disk in %s and goes up with the next "
                            "successful upload (this run or the next)", e, self.run.state.cycle, self.run.outbox.path)
                return False
            except HubAuthError as e:
                self.run.outbox.stash(files, message, self.run.head, self.run.state.cycle)
                raise TrainError(f"{e} Cycle {self.run.state.cycle} stays on disk in {self.run.outbox.path} and goes up "
                                 "with the next run whose token can write.") from e
            self.run.mark_committed(info.id)
            log.info("[SAVE] %s -> commit %s%s", message.splitlines()[0], info.id[:8], " (+ model_best.pt)" if best is not None else "")
            self._prune()
            return True

    # -- the outbox -------------------------------------------------------------
    def flush_outbox(self, stopping: bool = False) -> bool:
        """Upload the commits waiting on disk as one, folded; the checkpoint in memory is the newest of them.

        On a hub that moved on, the waiting cycles are merged as one onto its
        head (the merge policy), carrying all their replay chunks. Stopping,
        the optimizer state stays behind if it would not go up in time.
        """
        pending = self.run.outbox.entries()
        if not pending:
            return True
        newest = pending[-1]
        files, message = self._fold(pending)
        if stopping:
            files = self._fit_stop(files)
        title = message.splitlines()[0]
        try:
            with _time_limit(self.run.hub, self.run.stop.seconds_left(self.run.cfg.stop_seconds) if stopping else None):
                commit_id = self.attempt(files, message, self.run.head).id
        except HubConflict as e:
            commit_id = self._landed(newest)
            if commit_id is None:
                self._merge_pending(pending, e.head)
                return True
            log.info("[SAVE] %s had gone up before its run ended (or lost the answer): commit %s", title, commit_id[:8])
        except HubUnavailable as e:
            log.warning("[SAVE] hub unreachable (%s): cycle(s) %s stay on disk in %s and go up with the next "
                        "successful upload (this run or the next)",
                        e, cycles_text([p.cycle for p in pending]), self.run.outbox.path)
            return False
        except HubAuthError as e:
            raise TrainError(f"{e} Cycle(s) {cycles_text([p.cycle for p in pending])} stay on disk in "
                             f"{self.run.outbox.path} and go up with the next run whose token can write.") from e
        else:
            folded = f", cycles {cycles_text([p.cycle for p in pending[:-1]])} folded in" if len(pending) > 1 else ""
            log.info("[SAVE] %s -> commit %s (left on disk until now%s)%s", title, commit_id[:8], folded,
                     " (+ model_best.pt)" if BEST_FILE in files else "")
        for entry in pending:
            self.run.outbox.remove(entry)
        self.run.mark_committed(commit_id)
        self._prune()
        return True

    def _fold(self, pending: list[Pending]) -> tuple[dict[str, Path], str]:
        """The files and message of one commit holding every waiting cycle (the newest checkpoint)."""
        newest = pending[-1]
        files = {n: p for n, p in newest.files.items() if not is_replay_file(n)}
        window = {replay_file(n) for n in self.run.state.replay_chunks}
        for entry in pending:
            files.update({n: p for n, p in entry.files.items() if n in window})
        best = next((e for e in reversed(pending) if BEST_FILE in e.files), None)
        title, _, description = newest.message.partition("\n")
        lines = [line for line in description.strip().splitlines() if line.strip()]
        if best is not None:
            files[BEST_FILE] = best.files[BEST_FILE]
            lines = best.message.partition("\n")[2].strip().splitlines()
        if len(pending) > 1:
            lines.append(f"Cycles {cycles_text([p.cycle for p in pending[:-1]])} are folded into this commit "
                         "(commits are paced: --commit-interval).")
        return files, title + ("\n\n" + "\n".join(lines) if lines else "")

    def _fit_stop(self, files: dict[str, Path]) -> dict[str, Path]:
        """The files of a stop's commit: without the optimizer state if it would not go up in the time left."""
        left = self.run.stop.seconds_left(self.run.cfg.stop_seconds)
        needed = self._full_upload_s
        if OPTIMIZER_FILE not in files or (needed is not None and 1.5 * needed + 1 < left) or (needed is None and left > 10):
            return files
        log.warning("[SAVE] stopping: %.0fs left, too few to upload the optimizer state too; the next run "
                    "reuses the last one committed", left)
        return {n: p for n, p in files.items() if n != OPTIMIZER_FILE}

    def _landed(self, entry: Pending) -> str | None:
        """The hub's commit of ``entry`` when it went up but was never crossed off (a kill, a lost answer)."""
        try:
            recent = self.run.hub.history(limit=len(self.run.outbox.entries()) + 8)
        except HubError:
            return None
        title = entry.message.splitlines()[0].strip()
        for c in recent:
            if c.parent == self.run.head and c.message.splitlines()[0].strip() == title:
                return c.id
        return None

    def _merge_pending(self, waiting: list[Pending], head: str | None) -> None:
        """The waiting cycles met a moved head: merge the newest (which holds them all) onto it, as one commit."""
        carried = self.run.workdir / "carried"
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
            self.run.outbox.remove(entry)
        self._upload(message, best, None, [self.run.state.cycle], extra, merges=1)

    def _merge_head(self, head: str | None, message: str, cycles: list[int]) -> tuple[str, None]:
        """Merge this trainer's cycle(s) onto the head another trainer committed; the new message and the best to upload (none:
        the merged net never met their ``model_best.pt``)."""
        head = head or self.run.hub.head()
        their_cfg, theirs = read_weights(self.run.hub.download(MODEL_FILE, head))
        if their_cfg != self.run.net_cfg:
            raise TrainError(f"hub {self.run.hub.uri} now holds {their_cfg.name} weights, this run trains "
                             f"{self.run.net_cfg.name}; cannot merge cycle {self.run.state.cycle}")
        ours = self.run.weights()
        base = self.run.base_state if self.run.base_state is not None else ours
        merged, new_base = merge_weights(theirs, ours, base)
        raw = getattr(self.run.net, "module", self.run.net)
        raw.load_state_dict(merged)
        if self.run.learner.ema is not None:  # the merged net is new: its average starts from it
            self.run.learner.reset_average()
        self.run.base_state = new_base
        their_state_path = self.run.hub.download(STATE_FILE, head)
        their_state = TrainingState.load(their_state_path) if their_state_path else TrainingState()
        their_metrics = read_metrics(self.run.hub.download(METRICS_FILE, head))
        own_cycle = self.run.state.cycle
        new_cycle = their_state.cycle + 1
        row = dict(self.run.metrics[-1], cycle=new_cycle, merged_onto=head[:8], merged_from_cycle=own_cycle)
        self.run.metrics = their_metrics + [row]
        load_replay(self.run, their_state.replay_chunks, head)
        self.run.state.replay_chunks = self.run.replay.names
        self.run.state.cycle = new_cycle
        self.run.state.games = their_state.games + row["games"]
        self.run.state.positions = their_state.positions + row["positions"]
        self.run.state.train_positions = their_state.train_positions + row.get("train_positions", 0)
        self.run.state.samples = their_state.samples + row.get("cycle_samples", 0)
        known = [x for x in (their_state.best_val_loss, row.get("val_loss")) if x is not None]
        self.run.state.best_val_loss = min(known) if known else None
        # The merged net never met their model_best.pt over the board: theirs stays the best.
        self.run.state.best_cycle = their_state.best_cycle
        self.best.load_from(head)
        self.run.head = head
        title = message.splitlines()[0].replace(f"Training cycle {own_cycle},", f"Training cycle {new_cycle},")
        log.warning("[SAVE] another trainer committed %s (cycle %d) first; merged this machine's cycle %s onto it as "
                    "cycle %d (weights: theirs + 1/2 of our delta)", head[:8], their_state.cycle,
                    cycles_text(cycles), new_cycle)
        return title, None

    # -- storage ------------------------------------------------------------------
    def _prune(self) -> None:
        """With ``--max-repo-gb``: prune the hub under it (pruning may rewrite history: the head is read again)."""
        if self.run.cfg.max_repo_gb is None:
            return
        try:
            report = self.run.hub.prune(int(self.run.cfg.max_repo_gb * 1e9), is_heavy, squash=self.run.cfg.squash_history)
            if report.deleted or report.squashed:
                self.run.head = self.run.hub.head()
                log.info("[SAVE] hub pruned from %s to %s (limit %s)", format_bytes(report.size_before),
                         format_bytes(report.size_after), format_bytes(report.limit))
        except HubError as e:
            log.warning("[SAVE] could not prune the hub under --max-repo-gb (%s); trying again after the next commit", e)


class _time_limit:
    """Cap the retry waits of a hub's calls while a stop's deadline runs (hubs without a retry policy: no-op)."""

    def __init__(self, hub, seconds: float | None) -> None:
        self.hub, self.seconds, self.old = hub, seconds, None

    def __enter__(self) -> None:
        policy = getattr(self.hub, "retry", None)
        if self.seconds is not None and policy is not None:
            self.old = policy
            self.hub.retry = dataclasses.replace(policy, budget=min(policy.budget, self.seconds))

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            self.hub.retry = self.old
