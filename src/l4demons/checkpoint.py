"""What a hub commit holds besides the weights: training state, optimizer state and metrics.

``training_state.pt`` is a dict of tensors and primitives, loaded with
``weights_only=True`` like the weights: scheduler state and step, counters,
RNG states, best validation loss, the names of the replay chunks in the
window, and the run's configuration. It is small and stays in every commit.
``optimizer.pt`` holds the optimizer's state (AdamW: twice the weights): the
heaviest file of a commit and the one no one rolls back to, so it is kept
apart, may be pruned from old commits, and may lag the weights by a cycle
when a stop leaves no time to upload it (a resume then rebuilds from the
last one uploaded; a commit without any starts a fresh optimizer). Older
commits hold the optimizer inside ``training_state.pt``; both load.
``metrics.jsonl`` has one JSON row per cycle.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from l4demons.atomic import atomic_write
from l4demons.network import atomic_torch_save

STATE_FORMAT = "l4demons-state-v1"
OPTIMIZER_FORMAT = "l4demons-optimizer-v1"

MODEL_FILE = "model.pt"
BEST_FILE = "model_best.pt"
STATE_FILE = "training_state.pt"
OPTIMIZER_FILE = "optimizer.pt"
METRICS_FILE = "metrics.jsonl"
REPLAY_DIR = "replay"


class StateError(ValueError):
    """A training-state or metrics file that cannot be used."""


@dataclasses.dataclass
class TrainingState:
    cycle: int = 0
    """Cycles completed (the initial commit is cycle 0)."""
    learner: dict | None = None
    """Learner.state_dict() but the optimizer (in optimizer.pt): scheduler, step (older commits: all three)."""
    games: int = 0
    positions: int = 0
    train_positions: int = 0
    """Self-play positions of games not held out for validation, over all runs."""
    samples: int = 0
    """Positions the learner has drawn, over all runs and ranks (sample reuse = samples / train_positions)."""
    hours: float = 0.0
    """Wall-clock hours spent training, over all runs."""
    best_val_loss: float | None = None
    resign_checks: float = 0.0
    """Played-out games in which a side would have resigned (decayed each cycle)."""
    false_resigns: float = 0.0
    """...of which that side did not lose."""
    material_checks: float = 0.0
    """Recent positions with a decisive material lead (decayed; see lifecycle/bootstrap.py)."""
    material_agreed: float = 0.0
    """...of which the search value agreed with the lead."""
    material_retired: bool = False
    """The material rule is off for good: the value head knows material."""
    elo: float | None = None
    elo_pool: dict = dataclasses.field(default_factory=dict)
    """Earlier cycles' Elo games, decayed: ``{anchor name: [wins, draws, losses]}``."""
    best_cycle: int | None = None
    """The cycle whose net is ``model_best.pt`` (None: the initial weights, or not known)."""
    replay_chunks: list[str] = dataclasses.field(default_factory=list)
    """Chunk names of the replay window, oldest first (files replay/<name>.npz)."""
    torch_rng: torch.Tensor | None = None
    numpy_rng: dict | None = None
    config: dict = dataclasses.field(default_factory=dict)
    """The run configuration that produced this state (for the record)."""
    initialised_by: str = ""
    """The machine and run that made the hub's initial commit. Two trainers that start on one empty hub at
    once build the same random weights from the same seed; this keeps their initial commits different, so
    the Hub refuses the second (a conflict) instead of skipping it as an empty commit."""

    def save(self, path: str | os.PathLike) -> None:
        atomic_torch_save({"format": STATE_FORMAT, **dataclasses.asdict(self)}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainingState:
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise StateError(f"{path} is not a loadable training state ({type(e).__name__})") from e
        if not isinstance(blob, dict) or blob.pop("format", None) != STATE_FORMAT:
            raise StateError(f"{path} is not an L4Demons training state")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in blob.items() if k in names})


HEAVY_LEARNER_STATE = ("optimizer", "ema")
"""The parts of ``Learner.state_dict()`` as large as the weights: ``optimizer.pt`` holds them, not the
training state, so the hub's history does not keep a copy of each for every cycle."""


def save_optimizer(parts: dict, path: str | os.PathLike) -> None:
    """Write the learner's heavy state as ``optimizer.pt`` (atomically): the optimizer's ``state_dict()``
    under ``"optimizer"`` and, when the learner keeps one, the average of recent weights under ``"ema"``."""
    atomic_torch_save({"format": OPTIMIZER_FORMAT, **parts}, path)


def load_optimizer_parts(path: str | os.PathLike) -> dict:
    """The heavy learner state of an ``optimizer.pt`` (:data:`HEAVY_LEARNER_STATE` keys it holds).

    :raises StateError: the file does not load, or is not an optimizer state.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise StateError(f"{path} is not a loadable optimizer state ({type(e).__name__})") from e
    if not isinstance(blob, dict) or blob.get("format") != OPTIMIZER_FORMAT or "optimizer" not in blob:
        raise StateError(f"{path} is not an L4Demons optimizer state")
    return {k: blob[k] for k in HEAVY_LEARNER_STATE if k in blob}


def load_optimizer(path: str | os.PathLike) -> dict:
    """The optimizer ``state_dict()`` of an ``optimizer.pt`` (:func:`load_optimizer_parts`)."""
    return load_optimizer_parts(path)["optimizer"]


def is_replay_file(name: str) -> bool:
    """Whether a hub file name is a replay chunk (``replay/`` holds the window's chunks and nothing else)."""
    return name.startswith(REPLAY_DIR + "/") and name.endswith(".npz")


def replay_file(name: str) -> str:
    """Hub path of a replay chunk."""
    return f"{REPLAY_DIR}/{name}.npz"


def read_metrics(path: str | os.PathLike | None) -> list[dict]:
    if path is None or not Path(path).exists():
        return []
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StateError(f"{path} line {n} is not JSON: {e}") from e
    return rows


def write_metrics(rows: list[dict], path: str | os.PathLike) -> None:
    atomic_write(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
