"""Committing a cycle: the files of a commit, the upload, the outbox, and merges.

Several trainers on one hub (merge policy): every commit names the head it
started from. When the hub answers that another trainer committed first,
this trainer pulls the new head and merges: weights become
``theirs + 1/2 * (ours - base)`` (see :mod:`l4demons.merge`: the hub's commit
stays whole, our cycle's change counts half), this cycle is renumbered
after theirs, the replay windows are united, and the commit is retried. A
merge keeps our delta whole for a further retry (the base moves with it),
so a second conflict adds 1/2 of our delta again, never theirs. After
``MAX_MERGES`` failed tries the cycle is dropped with a log line saying so;
nothing is ever lost silently.

Unreachable hub: a commit that cannot go up (network, or a token without
write access) waits in the :class:`Outbox`; later cycles queue behind it,
and the queue goes up in order, each commit on the one before, with the
next upload that reaches the hub. If the hub moved on meanwhile, the
waiting cycles are merged onto its head as one commit (merge policy above).
Mixed into :class:`l4demons.lifecycle.trainer.Trainer`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from l4demons.checkpoint import BEST_FILE, METRICS_FILE, MODEL_FILE, REPLAY_DIR, STATE_FILE, TrainingState, read_metrics, replay_file, write_metrics
from l4demons.hub import HubAuthError, HubConflict, HubError, HubUnavailable
from l4demons.lifecycle.config import config_record
from l4demons.lifecycle.common import TrainError, cycles_text, machine_name
from l4demons.merge import merge_weights
from l4demons.modelcard import CARD_FILE, render_model_card
from l4demons.network import read_weights, save_weights, weights_dict
from l4demons.outbox import Pending
from l4demons.replay import ReplayChunk

log = logging.getLogger("l4demons.train")

MAX_MERGES = 5


class CommitMixin:
    """Save, upload, queue and merge; see the module docstring."""

    # -- saving and committing ------------------------------------------------
    def _save_files(self, best: bool, chunk: ReplayChunk | None = None) -> dict[str, Path]:
        st = self.state
        st.learner = self.learner.state_dict()
        st.torch_rng = torch.get_rng_state()
        st.numpy_rng = self.rng.bit_generator.state
        st.config = config_record(self.cfg)
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
                              "on in this run's next cycle)", cycles_text(cycles), machine_name(), MAX_MERGES)
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
                            e, cycles_text([p.cycle for p in pending[i:]]), self.outbox.path)
                return
            except HubAuthError as e:
                raise TrainError(f"{e} Cycle(s) {cycles_text([p.cycle for p in pending[i:]])} stay on disk in "
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
        self.state.train_positions = their_state.train_positions + row.get("train_positions", 0)
        self.state.samples = their_state.samples + row.get("cycle_samples", 0)
        known = [x for x in (their_state.best_val_loss, row.get("val_loss")) if x is not None]
        self.state.best_val_loss = min(known) if known else None
        # The merged net never met their model_best.pt over the board: theirs stays the best.
        best = False
        self.state.best_cycle = their_state.best_cycle
        self._load_best_from(head)
        self.head = head
        title = message.splitlines()[0].replace(f"Training cycle {own_cycle},", f"Training cycle {new_cycle},")
        log.warning("[SAVE] another trainer committed %s (cycle %d) first; merged this machine's cycle %s onto it as "
                    "cycle %d (weights: theirs + 1/2 of our delta)", head[:8], their_state.cycle,
                    cycles_text(cycles), new_cycle)
        return title, best
