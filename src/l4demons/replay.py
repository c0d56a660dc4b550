"""The replay window: recent self-play positions, compact, in chunks.

Each training cycle's games become one :class:`ReplayChunk` (a single
``.npz`` of flat arrays), which is also the unit the hub stores: a commit
adds the new chunk and names the chunks of the window in the training
state, so a resumed run continues with exactly the same window.

Validation holds out whole games (every ``validation_every``-th game of a
chunk): positions of one game are strongly correlated, so holding out
positions would leak the answer into training.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zlib

import numpy as np

from l4demons.atomic import atomic_write
from l4demons.encoding import POLICY_SIZE, POSITION_DTYPE, planes_from_positions
from l4demons.selfplay import GameRecord

_ARRAYS = ("positions", "policy_offsets", "policy_indices", "policy_probs", "full_search", "results", "values", "game_offsets",
           "validation", "played_on")
_LATE_ARRAYS = {"values": np.float16, "played_on": bool}
"""Per-position arrays added after the first chunks were written: an older chunk loads them as zeros
(no search value: trained on game results alone; no position played on)."""


@dataclasses.dataclass
class ReplayChunk:
    """The games of one cycle as flat arrays (see GameRecord for the fields)."""

    name: str
    positions: np.ndarray
    policy_offsets: np.ndarray
    policy_indices: np.ndarray
    policy_probs: np.ndarray
    full_search: np.ndarray
    results: np.ndarray
    values: np.ndarray
    """[n] float16 search value of each position, side to move's view."""
    game_offsets: np.ndarray
    """[games + 1]: game g is positions game_offsets[g]:game_offsets[g+1]."""
    validation: np.ndarray
    """[games] bool: held out for the validation loss, never trained on."""
    played_on: np.ndarray | None = None
    """[n] bool: searched after the material rule decided the game (cheap searches, no policy target; the
    learner weighs their value loss by ``LearnerConfig.played_on_value_weight``). None (a chunk built
    without it): none played on."""

    def __post_init__(self) -> None:
        if self.played_on is None:
            self.played_on = np.zeros(len(self.positions), dtype=bool)

    @classmethod
    def from_games(cls, name: str, games: list[GameRecord], validation_every: int = 10) -> ReplayChunk:
        if not games:
            raise ValueError("a replay chunk needs at least one game")
        lengths = [len(g) for g in games]
        pol_lengths = [len(g.policy_indices) for g in games]
        offsets = [g.policy_offsets[:-1] + base for g, base in zip(games, np.concatenate([[0], np.cumsum(pol_lengths)]))]
        salt = zlib.crc32(name.encode())
        return cls(
            name=name,
            positions=np.concatenate([g.positions for g in games]),
            policy_offsets=np.concatenate(offsets + [np.array([sum(pol_lengths)])]).astype(np.int64),
            policy_indices=np.concatenate([g.policy_indices for g in games]).astype(np.uint16),
            policy_probs=np.concatenate([g.policy_probs for g in games]).astype(np.float16),
            full_search=np.concatenate([g.full_search for g in games]),
            results=np.concatenate([g.results for g in games]).astype(np.int8),
            values=np.concatenate([g.values for g in games]).astype(np.float16),
            game_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            validation=np.array([(salt + k) % validation_every == 0 for k in range(len(games))], dtype=bool)
            if validation_every > 0
            else np.zeros(len(games), dtype=bool),
            played_on=np.concatenate([np.arange(len(g)) >= len(g) - g.played_on for g in games]),
        )

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def games(self) -> int:
        return len(self.game_offsets) - 1

    def position_mask(self, validation: bool) -> np.ndarray:
        """Bool [positions]: the positions of held-out (or of training) games."""
        per_game = self.validation if validation else ~self.validation
        return np.repeat(per_game, np.diff(self.game_offsets))

    def train_weight(self, played_on_weight: float) -> float:
        """Training positions (not held out), a played-on one counting ``played_on_weight``.

        What the window's capacity, the data seen and the sample-reuse target
        count, so that cheap played-on positions do not inflate them.
        """
        train = self.position_mask(False)
        return float(train.sum()) - (1.0 - played_on_weight) * float((train & self.played_on).sum())

    def save(self, path: str | os.PathLike) -> None:
        """Write the chunk as a compressed npz, atomically."""
        buf = io.BytesIO()
        np.savez_compressed(buf, name=np.array(self.name), **{k: getattr(self, k) for k in _ARRAYS})
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReplayChunk:
        """:raises ValueError: the file is not a replay chunk."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _ARRAYS if k not in _LATE_ARRAYS}
                n = len(arrays["positions"])
                late = {k: z[k] if k in z.files else np.zeros(n, dtype) for k, dtype in _LATE_ARRAYS.items()}
                chunk = cls(name=str(z["name"]), **arrays, **late)
        except (OSError, KeyError, ValueError, zlib.error) as e:
            raise ValueError(f"{path} is not a readable replay chunk: {e}") from e
        if chunk.positions.dtype != POSITION_DTYPE:
            raise ValueError(f"{path} holds positions of another encoding")
        return chunk


@dataclasses.dataclass
class Batch:
    """Training inputs and targets of ``B`` positions; the policy target is sparse (legal moves only)."""

    planes: np.ndarray
    """[B, 20, 8, 8] float32 inputs."""
    policy_index: np.ndarray
    """[K] int64 flat index ``row * 4672 + move`` of every legal move of every position."""
    policy_prob: np.ndarray
    """[K] float32 target probability of that move (the search's improved policy)."""
    policy_weight: np.ndarray
    """[B] float32: 1 where the policy came from a full search."""
    wdl: np.ndarray
    """[B, 3] float32 target for the side to move (win, draw, loss): the game result, one-hot."""
    search_value: np.ndarray
    """[B] float32 the self-play search's value of the position (side to move)."""
    played_on: np.ndarray
    """[B] bool: played on after the game was decided (see ReplayChunk.played_on)."""

    def __len__(self) -> int:
        return len(self.planes)

    @property
    def policy(self) -> np.ndarray:
        """[B, 4672] dense target distribution (zero off the legal moves)."""
        dense = np.zeros(len(self) * POLICY_SIZE, np.float32)
        dense[self.policy_index] = self.policy_prob
        return dense.reshape(len(self), POLICY_SIZE)

    @property
    def legal(self) -> np.ndarray:
        """[B, 4672] bool: the legal moves."""
        dense = np.zeros(len(self) * POLICY_SIZE, bool)
        dense[self.policy_index] = True
        return dense.reshape(len(self), POLICY_SIZE)


class ReplayWindow:
    """The newest chunks holding at most ``capacity`` training positions.

    ``played_on_weight``: what a played-on position counts against the
    capacity (``ReplayChunk.train_weight``); 1 counts every position.
    """

    def __init__(self, capacity: int = 200_000, played_on_weight: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be positive")
        if not 0.0 <= played_on_weight <= 1.0:
            raise ValueError("played_on_weight must be in [0, 1]")
        self.capacity = capacity
        self.played_on_weight = played_on_weight
        self.chunks: list[ReplayChunk] = []
        self._train: tuple[np.ndarray, np.ndarray] | None = None  # (chunk, position) of training positions

    def add(self, chunk: ReplayChunk) -> list[ReplayChunk]:
        """Add the newest chunk; returns the chunks that fell out of the window."""
        self.chunks.append(chunk)
        dropped = []
        w = self.played_on_weight
        while len(self.chunks) > 1 and self.train_weight - self.chunks[0].train_weight(w) >= self.capacity:
            dropped.append(self.chunks.pop(0))
        self._train = None
        return dropped

    @property
    def train_positions(self) -> int:
        return sum(int(c.position_mask(False).sum()) for c in self.chunks)

    @property
    def train_weight(self) -> float:
        """Training positions, a played-on one counting ``played_on_weight`` (what ``capacity`` bounds)."""
        return sum(c.train_weight(self.played_on_weight) for c in self.chunks)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.chunks]

    def _index(self, validation: bool) -> tuple[np.ndarray, np.ndarray]:
        cs, ps = [], []
        for ci, c in enumerate(self.chunks):
            pos = np.nonzero(c.position_mask(validation))[0]
            cs.append(np.full(len(pos), ci, dtype=np.int64))
            ps.append(pos)
        if not cs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(cs), np.concatenate(ps)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A batch of training positions drawn uniformly from the window.

        :raises ValueError: the window holds no training position.
        """
        if self._train is None:
            self._train = self._index(validation=False)
        chunk_ids, pos_ids = self._train
        if len(pos_ids) == 0:
            raise ValueError("the replay window holds no training positions yet")
        pick = rng.integers(0, len(pos_ids), size=batch_size)
        return self._gather(chunk_ids[pick], pos_ids[pick])

    def validation_batches(self, batch_size: int, limit: int = 4096) -> list[Batch]:
        """The newest held-out positions (at most ``limit``), in batches."""
        chunk_ids, pos_ids = self._index(validation=True)
        chunk_ids, pos_ids = chunk_ids[-limit:], pos_ids[-limit:]
        return [
            self._gather(chunk_ids[i : i + batch_size], pos_ids[i : i + batch_size])
            for i in range(0, len(pos_ids), batch_size)
        ]

    def _gather(self, chunk_ids: np.ndarray, pos_ids: np.ndarray) -> Batch:
        """Rows ``pos_ids[i]`` of chunks ``chunk_ids[i]``, one chunk at a time (no loop over rows)."""
        n = len(pos_ids)
        records = np.zeros(n, dtype=POSITION_DTYPE)
        weight = np.zeros(n, dtype=np.float32)
        wdl = np.zeros((n, 3), dtype=np.float32)
        search_value = np.zeros(n, dtype=np.float32)
        played_on = np.zeros(n, dtype=bool)
        flat_index, flat_prob = [], []
        for ci in np.unique(chunk_ids):
            c = self.chunks[ci]
            rows = np.nonzero(chunk_ids == ci)[0]
            pis = pos_ids[rows]
            records[rows] = c.positions[pis]
            weight[rows] = c.full_search[pis]
            search_value[rows] = c.values[pis]
            played_on[rows] = c.played_on[pis]
            wdl[rows, 1 - c.results[pis].astype(np.int64)] = 1.0  # result 1 -> win (0), 0 -> draw (1), -1 -> loss (2)
            # The sparse policies of these positions as one flat index into the chunk's policy arrays.
            lo = c.policy_offsets[pis]
            lengths = c.policy_offsets[pis + 1] - lo
            starts = np.cumsum(lengths) - lengths  # where each position's entries begin in `flat`
            flat = np.repeat(lo - starts, lengths) + np.arange(int(lengths.sum()))
            flat_index.append(np.repeat(rows, lengths) * POLICY_SIZE + c.policy_indices[flat])
            flat_prob.append(c.policy_probs[flat].astype(np.float32))
        return Batch(planes_from_positions(records), np.concatenate(flat_index).astype(np.int64),
                     np.concatenate(flat_prob), weight, wdl, search_value, played_on)

