"""What a hub commit holds besides the weights: training state and metrics.

``training_state.pt`` is a dict of tensors and primitives, loaded with
``weights_only=True`` like the weights: optimizer and scheduler state,
counters, RNG states, best validation loss, the names of the replay chunks
in the window, and the run's configuration. ``metrics.jsonl`` has one JSON
row per cycle.
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

MODEL_FILE = "model.pt"
BEST_FILE = "model_best.pt"
STATE_FILE = "training_state.pt"
METRICS_FILE = "metrics.jsonl"
REPLAY_DIR = "replay"


class StateError(ValueError):
    """A training-state or metrics file that cannot be used."""


@dataclasses.dataclass
class TrainingState:
    cycle: int = 0
    """Cycles completed (the initial commit is cycle 0)."""
    learner: dict | None = None
    """Learner.state_dict(): optimizer, scheduler, step."""
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
