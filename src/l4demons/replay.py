"""The replay window: recent self-play positions, compact, in chunks.

Each training cycle's games become one :class:`ReplayChunk` (a single
``.npz`` of flat arrays), which is also the unit the hub stores: a commit
adds the new chunk and names the chunks of the window in the training
state, so a resumed run continues with exactly the same window.

Validation holds out whole games (every ``validation_every``-th game of a
chunk): positions of one game are strongly correlated, so holding out
positions would leak the answer into training.

Teacher chunks (a warm start's labelled positions, named ``NNNNNN-warm-...``)
stay apart from the window's capacity: they neither count against it nor
leave by it. A batch draws a share of its rows from them (the learner's
``teacher_share``), and the trainer drops them once that share is
negligible (:meth:`ReplayWindow.drop_teacher`).

The learner draws its batches through :meth:`ReplayWindow.on_device`
(:mod:`l4demons.replay_device`); :meth:`ReplayWindow.sample` builds the
same batch on the host with numpy (the reference the device path is tested
against, and what tools that want numpy use).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import zlib

import numpy as np
import torch

from l4demons.atomic import atomic_write
from l4demons.encoding import POLICY_SIZE, POSITION_DTYPE, material_lead, planes_from_positions
from l4demons.selfplay import GameRecord

_ARRAYS = ("positions", "policy_offsets", "policy_indices", "policy_probs", "full_search", "results", "values", "game_offsets",
           "validation", "played_on")
_LATE_ARRAYS = {"values": np.float16, "played_on": bool}
"""Per-position arrays added after the first chunks were written: an older chunk loads them as zeros
(no search value: trained on game results alone; no position played on)."""

TEACHER_TAG = "-warm-"
"""In a chunk's name: a teacher chunk (the warm start's labelled positions, ``pretrain/run.py``)."""


MATERIAL_AHEAD_PLIES = 12
"""How far ahead the material head's target looks (:func:`material_ahead`)."""


def material_ahead(positions: np.ndarray, game_offsets: np.ndarray, plies: int = MATERIAL_AHEAD_PLIES) -> np.ndarray:
    """int8 ``[n]``: each position's material lead for its side to move ``plies`` plies later in the same game
    (at the game's last position if it ends sooner), in pawns.

    The games' positions must be consecutive plies, as self-play's are: a piece left hanging is a piece
    lost a few plies on, so the target differs from position to position where the result does not.
    """
    lead = material_lead(positions)
    at = np.arange(len(positions))
    last = np.repeat(game_offsets[1:] - 1, np.diff(game_offsets))
    ahead = np.minimum(at + plies, last)
    sign = np.where((ahead - at) % 2 == 0, 1, -1)  # the side to move changes every ply
    return np.clip(sign * lead[ahead], -127, 127).astype(np.int8)


def is_teacher(name: str) -> bool:
    """Whether the chunk named ``name`` holds a teacher's labelled positions rather than self-play games."""
    return TEACHER_TAG in name


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
    handoff_positions: int = 0
    """A teacher chunk: the run's self-play training positions when it joined the window (the teacher
    share decays with those generated since; 0 in chunks written before it was kept)."""

    def __post_init__(self) -> None:
        if self.played_on is None:
            self.played_on = np.zeros(len(self.positions), dtype=bool)

    @functools.cached_property
    def material(self) -> np.ndarray:
        """[n] int8: the material head's target (:func:`material_ahead`), derived from the positions when first
        trained on, not stored. Meaningless in a teacher chunk, whose positions need not be consecutive plies:
        the learner skips it there."""
        return material_ahead(self.positions, self.game_offsets)

    @property
    def teacher(self) -> bool:
        """Whether this chunk holds a teacher's labelled positions (:func:`is_teacher`)."""
        return is_teacher(self.name)

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
        np.savez_compressed(buf, name=np.array(self.name), handoff_positions=np.array(self.handoff_positions),
                            **{k: getattr(self, k) for k in _ARRAYS})
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReplayChunk:
        """:raises ValueError: the file is not a replay chunk."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _ARRAYS if k not in _LATE_ARRAYS}
                n = len(arrays["positions"])
                late = {k: z[k] if k in z.files else np.zeros(n, dtype) for k, dtype in _LATE_ARRAYS.items()}
                handoff = int(z["handoff_positions"]) if "handoff_positions" in z.files else 0
                chunk = cls(name=str(z["name"]), **arrays, **late, handoff_positions=handoff)
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
    teacher: np.ndarray
    """[B] bool: a teacher's labelled position (value target wholly its ``search_value``, the teacher's q)."""
    material: np.ndarray
    """[B] float32: the side to move's material lead a few plies later (``ReplayChunk.material``), in pawns."""

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


def draw(selfplay: int, teacher: int, batch_size: int, teacher_share: float,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One batch's picks: ``(indices into the teacher's training positions, into self-play's)``.

    ``teacher_share`` of the rows come from the teacher's ``teacher``
    positions (its fraction of a row rounded up with that probability, so the
    share holds on average at any batch size), the rest from self-play's
    ``selfplay``; all rows from one side when the other has none. Without
    teacher rows the draws are the plain uniform ones, as before teacher
    chunks existed.

    :raises ValueError: neither side holds a position.
    """
    if selfplay + teacher == 0:
        raise ValueError("the replay window holds no training positions yet")
    if selfplay == 0:
        k = batch_size
    elif teacher == 0 or teacher_share <= 0.0:
        k = 0
    else:
        exact = teacher_share * batch_size
        k = min(batch_size, int(exact) + int(rng.random() < exact - int(exact)))
    none = np.zeros(0, np.int64)
    picked_teacher = rng.integers(0, teacher, size=k) if k else none
    picked_selfplay = rng.integers(0, selfplay, size=batch_size - k) if k < batch_size else none
    return picked_teacher, picked_selfplay


class ReplayWindow:
    """The newest self-play chunks holding at most ``capacity`` training positions, and the teacher chunks.

    ``played_on_weight``: what a played-on position counts against the
    capacity (``ReplayChunk.train_weight``); 1 counts every position.
    Teacher chunks (:func:`is_teacher`) are kept apart: they do not count
    against the capacity and never leave by it, only by :meth:`drop_teacher`.
    """

    def __init__(self, capacity: int = 200_000, played_on_weight: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be positive")
        if not 0.0 <= played_on_weight <= 1.0:
            raise ValueError("played_on_weight must be in [0, 1]")
        self.capacity = capacity
        self.played_on_weight = played_on_weight
        self.chunks: list[ReplayChunk] = []
        """Every chunk, teacher ones included, in the order they were added."""
        self._index_cache: dict[tuple[bool, bool], tuple[np.ndarray, np.ndarray]] = {}
        self._device = None  # the DeviceWindow of the current chunks (replay_device.py)

    def add(self, chunk: ReplayChunk) -> list[ReplayChunk]:
        """Add the newest chunk; returns the self-play chunks that fell out of the window."""
        self.chunks.append(chunk)
        dropped = []
        w = self.played_on_weight
        while True:
            selfplay = [c for c in self.chunks if not c.teacher]
            if len(selfplay) <= 1 or self.train_weight - selfplay[0].train_weight(w) < self.capacity:
                break
            dropped.append(selfplay[0])
            self.chunks = [c for c in self.chunks if c is not selfplay[0]]
        self._changed()
        return dropped

    def drop_teacher(self) -> list[ReplayChunk]:
        """Take the teacher chunks out of the window; returns them."""
        dropped = [c for c in self.chunks if c.teacher]
        if dropped:
            self.chunks = [c for c in self.chunks if not c.teacher]
            self._changed()
        return dropped

    def _changed(self) -> None:
        self._index_cache = {}
        self._device = None

    @property
    def train_positions(self) -> int:
        """Training positions of every chunk, the teacher's included (what a batch can draw)."""
        return sum(int(c.position_mask(False).sum()) for c in self.chunks)

    @property
    def teacher_positions(self) -> int:
        """Training positions of the teacher chunks."""
        return sum(int(c.position_mask(False).sum()) for c in self.chunks if c.teacher)

    @property
    def train_weight(self) -> float:
        """Self-play training positions, a played-on one counting ``played_on_weight`` (what ``capacity`` bounds)."""
        return sum(c.train_weight(self.played_on_weight) for c in self.chunks if not c.teacher)

    @property
    def handoff_positions(self) -> int:
        """The newest teacher chunk's ``handoff_positions`` (0 without one): where the teacher share's decay starts."""
        return max((c.handoff_positions for c in self.chunks if c.teacher), default=0)

    def on_device(self, device: str | torch.device):
        """The window's arrays on ``device``, copied once per change of the window."""
        from l4demons.replay_device import DeviceWindow

        device = torch.device(device)
        if self._device is None or self._device.device != device:
            self._device = DeviceWindow(self.chunks, device)
        return self._device

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.chunks]

    def _index(self, validation: bool, teacher: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk, position)`` of the held-out (or training) positions of the teacher's (or self-play's) chunks."""
        key = (validation, teacher)
        if key not in self._index_cache:
            cs, ps = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
            for ci, c in enumerate(self.chunks):
                if c.teacher == teacher:
                    pos = np.nonzero(c.position_mask(validation))[0]
                    cs.append(np.full(len(pos), ci, dtype=np.int64))
                    ps.append(pos)
            self._index_cache[key] = np.concatenate(cs), np.concatenate(ps)
        return self._index_cache[key]

    def sample(self, batch_size: int, rng: np.random.Generator, teacher_share: float = 0.0) -> Batch:
        """A batch of training positions, ``teacher_share`` of them the teacher's (:func:`draw`), each side uniform.

        :raises ValueError: the window holds no training position.
        """
        teacher_chunks, teacher_pos = self._index(False, True)
        chunk_ids, pos_ids = self._index(False, False)
        t, s = draw(len(pos_ids), len(teacher_pos), batch_size, teacher_share, rng)
        return self._gather(np.concatenate([teacher_chunks[t], chunk_ids[s]]),
                            np.concatenate([teacher_pos[t], pos_ids[s]]))

    def validation_batches(self, batch_size: int, limit: int = 4096, teacher: bool = False) -> list[Batch]:
        """The newest held-out positions (at most ``limit``), in batches: self-play's, or the teacher's."""
        chunk_ids, pos_ids = self._index(True, teacher)
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
        teacher = np.zeros(n, dtype=bool)
        material = np.zeros(n, dtype=np.float32)
        flat_index, flat_prob = [], []
        for ci in np.unique(chunk_ids):
            c = self.chunks[ci]
            rows = np.nonzero(chunk_ids == ci)[0]
            pis = pos_ids[rows]
            records[rows] = c.positions[pis]
            weight[rows] = c.full_search[pis]
            search_value[rows] = c.values[pis]
            played_on[rows] = c.played_on[pis]
            teacher[rows] = c.teacher
            material[rows] = c.material[pis]
            wdl[rows, 1 - c.results[pis].astype(np.int64)] = 1.0  # result 1 -> win (0), 0 -> draw (1), -1 -> loss (2)
            # The sparse policies of these positions as one flat index into the chunk's policy arrays.
            lo = c.policy_offsets[pis]
            lengths = c.policy_offsets[pis + 1] - lo
            starts = np.cumsum(lengths) - lengths  # where each position's entries begin in `flat`
            flat = np.repeat(lo - starts, lengths) + np.arange(int(lengths.sum()))
            flat_index.append(np.repeat(rows, lengths) * POLICY_SIZE + c.policy_indices[flat])
            flat_prob.append(c.policy_probs[flat].astype(np.float32))
        return Batch(planes_from_positions(records), np.concatenate(flat_index).astype(np.int64),
                     np.concatenate(flat_prob), weight, wdl, search_value, played_on, teacher, material)
