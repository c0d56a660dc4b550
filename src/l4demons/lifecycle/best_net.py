"""The run's best net: the local copy of ``model_best.pt``, which the gate plays and a promotion commits."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from l4demons.checkpoint import BEST_FILE
from l4demons.hub import HubError
from l4demons.lifecycle.run_state import RunState
from l4demons.network import WeightsError, read_weights

log = logging.getLogger("l4demons.train")

KEEP_BEST_FILES = 3
"""Best-net files kept on disk: a gate in flight may still be playing an older one."""


class BestNet:
    """The local copy of ``model_best.pt``: the gate's opponent, and the file a promotion commits.

    Each new best gets a new file name (game workers cache players by file
    name). The measuring thread adopts the nets its gate promotes at once,
    so its next gate plays them; the trainer's thread records the promotion
    in the training state when it commits it.
    """

    def __init__(self, run: RunState) -> None:
        self.run = run
        self._files: list[Path] = []
        self._serial = 0
        self._cycle: int | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        with self._lock:
            return self._files[-1] if self._files else None

    def current(self) -> tuple[Path | None, int | None]:
        """The best net's file and its cycle (None: the initial weights, or not known)."""
        with self._lock:
            return (self._files[-1] if self._files else None), self._cycle

    def _new_path(self, cycle: int | None) -> Path:
        with self._lock:
            self._cycle = cycle
            self._serial += 1
            self._files.append(self.run.workdir / f"best-{self._serial}.pt")
            while len(self._files) > KEEP_BEST_FILES:
                self._files.pop(0).unlink(missing_ok=True)
            return self._files[-1]

    def load_from(self, commit: str | None) -> None:
        """``commit``'s ``model_best.pt``; the run's current net where there is none (or it does not fit)."""
        run = self.run
        if commit is not None:
            try:
                path = run.hub.download(BEST_FILE, commit)
                if path is not None and read_weights(path)[0] == run.net_cfg:
                    shutil.copyfile(path, self._new_path(run.state.best_cycle))
                    return
            except (HubError, WeightsError) as e:
                log.warning("[ELO] model_best.pt of %s is unusable (%s); the gate starts from the current net",
                            commit[:8], e)
        run.save_played(self._new_path(run.state.best_cycle))

    def adopt(self, weights: Path, cycle: int) -> Path:
        """The net of ``cycle`` (the file ``weights``) is the best from now on; its copy (the measuring thread)."""
        path = self._new_path(cycle)
        shutil.copyfile(weights, path)
        return path

    def promote(self, cycle: int) -> Path:
        """The net the run plays now becomes the best (no gate), recorded in the training state; its file."""
        self.run.state.best_cycle = cycle
        path = self._new_path(cycle)
        self.run.save_played(path)
        return path
