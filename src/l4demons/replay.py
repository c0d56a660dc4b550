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

The learner draws its batches through :class:`DeviceWindow`: the window's
arrays copied once to the learner's device, where each batch is gathered,
unpacked into input planes and scattered into dense policy targets, so a
step moves only the batch's row numbers across. :meth:`ReplayWindow.sample`
builds the same batch on the host with numpy (the reference the device
path is tested against, and what tools that want numpy use).
"""

from __future__ import annotations

import dataclasses
import io
import os
import zlib
from typing import Iterator

import numpy as np
import torch

from l4demons.atomic import atomic_write
from l4demons.encoding import NUM_PLANES, POLICY_SIZE, POSITION_DTYPE, planes_from_positions
from l4demons.selfplay import GameRecord

_ARRAYS = ("positions", "policy_offsets", "policy_indices", "policy_probs", "full_search", "results", "values", "game_offsets",
           "validation", "played_on")
_LATE_ARRAYS = {"values": np.float16, "played_on": bool}
"""Per-position arrays added after the first chunks were written: an older chunk loads them as zeros
(no search value: trained on game results alone; no position played on)."""

TEACHER_TAG = "-warm-"
"""In a chunk's name: a teacher chunk (the warm start's labelled positions, ``pretrain/run.py``)."""


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
        self._device: DeviceWindow | None = None

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

    def on_device(self, device: str | torch.device) -> DeviceWindow:
        """The window's arrays on ``device``, copied once per change of the window."""
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
            wdl[rows, 1 - c.results[pis].astype(np.int64)] = 1.0  # result 1 -> win (0), 0 -> draw (1), -1 -> loss (2)
            # The sparse policies of these positions as one flat index into the chunk's policy arrays.
            lo = c.policy_offsets[pis]
            lengths = c.policy_offsets[pis + 1] - lo
            starts = np.cumsum(lengths) - lengths  # where each position's entries begin in `flat`
            flat = np.repeat(lo - starts, lengths) + np.arange(int(lengths.sum()))
            flat_index.append(np.repeat(rows, lengths) * POLICY_SIZE + c.policy_indices[flat])
            flat_prob.append(c.policy_probs[flat].astype(np.float32))
        return Batch(planes_from_positions(records), np.concatenate(flat_index).astype(np.int64),
                     np.concatenate(flat_prob), weight, wdl, search_value, played_on, teacher)


@dataclasses.dataclass
class TrainBatch:
    """A batch as the learner consumes it: tensors on its device, policy targets dense."""

    planes: torch.Tensor
    """[B, 20, 8, 8] float32 inputs."""
    policy: torch.Tensor
    """[B, 4672] float32 target distribution (zero off the legal moves)."""
    legal: torch.Tensor
    """[B, 4672] bool: the legal moves."""
    policy_weight: torch.Tensor
    """[B] float32: 1 where the policy came from a full search."""
    wdl: torch.Tensor
    """[B, 3] float32 game result for the side to move, one-hot (win, draw, loss)."""
    search_value: torch.Tensor
    """[B] float32 the self-play search's value (side to move)."""
    played_on: torch.Tensor
    """[B] bool: played on after the game was decided."""
    teacher: torch.Tensor
    """[B] bool: a teacher's labelled position."""

    def __len__(self) -> int:
        return len(self.planes)

    @classmethod
    def from_batch(cls, batch: Batch, device: str | torch.device = "cpu") -> TrainBatch:
        """A host :class:`Batch` on ``device`` (the reference for :meth:`DeviceWindow.sample`)."""
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        return cls(t(batch.planes), t(batch.policy), t(batch.legal), t(batch.policy_weight), t(batch.wdl),
                   t(batch.search_value), t(batch.played_on), t(batch.teacher))


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device``: through pinned memory and a non-blocking copy on CUDA."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


class DeviceWindow:
    """A :class:`ReplayWindow`'s chunks concatenated on one device; batches are assembled there.

    A step sends the device only its positions' row numbers (``[B]`` int64,
    pinned and non-blocking on CUDA). The gather, the unpacking of the
    position records into input planes and the scatter of the sparse policy
    targets into dense ones run as device ops, and nothing waits for the
    device: the one size the host needs (the batch's count of legal moves)
    comes from a host copy of the policy offsets. For the same ``rng`` it
    draws the same positions as ``ReplayWindow.sample`` and builds the same
    tensors as ``TrainBatch.from_batch`` of that batch.
    """

    def __init__(self, chunks: list[ReplayChunk], device: torch.device) -> None:
        self.device = device
        none = np.zeros(0, np.int64)
        starts = np.cumsum([0] + [len(c) for c in chunks])
        train = [c.position_mask(False) for c in chunks]

        def rows(teacher: bool, validation: bool) -> np.ndarray:
            return np.concatenate([np.nonzero(m != validation)[0] + s for c, m, s in zip(chunks, train, starts)
                                   if c.teacher == teacher] + [none])

        self._train_rows, self._validation_rows = rows(False, False), rows(False, True)
        """Window rows of self-play's training and held-out positions, in the order of ReplayWindow._index."""
        self._teacher_rows, self._teacher_validation_rows = rows(True, False), rows(True, True)
        policy_starts = np.cumsum([0] + [int(c.policy_offsets[-1]) for c in chunks])
        self._offsets = np.concatenate([c.policy_offsets[:-1] + s for c, s in zip(chunks, policy_starts)]
                                       + [policy_starts[-1:]]).astype(np.int64)
        """[N + 1] the policy offsets, on the host too: the batch's count of legal moves without a device read."""

        def cat(field: str, dtype: type) -> torch.Tensor:
            array = np.concatenate([getattr(c, field).astype(dtype, copy=False) for c in chunks] + [np.zeros(0, dtype)])
            return torch.from_numpy(array).to(device)

        records = np.ascontiguousarray(np.concatenate([c.positions for c in chunks] + [np.zeros(0, POSITION_DTYPE)]))
        self.records = torch.from_numpy(records.view(np.uint8).reshape(-1, POSITION_DTYPE.itemsize)).to(device)
        """[N, 99] uint8: the bytes of the position records (POSITION_DTYPE)."""
        self.policy_offsets = torch.from_numpy(self._offsets).to(device)
        self.policy_indices = cat("policy_indices", np.int16)  # < 4672: int16 holds them (torch has little uint16)
        self.policy_probs = cat("policy_probs", np.float16)
        self.full_search = cat("full_search", bool)
        self.results = cat("results", np.int8)
        self.values = cat("values", np.float16)
        self.played_on = cat("played_on", bool)
        self.teacher = torch.from_numpy(np.concatenate([np.full(len(c), c.teacher) for c in chunks]
                                                       + [np.zeros(0, bool)])).to(device)
        self._shifts = torch.arange(8, dtype=torch.uint8, device=device)
        self._squares = torch.arange(64, device=device)
        self._flag_shifts = torch.arange(5, dtype=torch.uint8, device=device)

    @property
    def train_positions(self) -> int:
        """Training positions, the teacher's included."""
        return len(self._train_rows) + len(self._teacher_rows)

    def sample(self, batch_size: int, rng: np.random.Generator, teacher_share: float = 0.0) -> TrainBatch:
        """A batch of training positions, the draws of ``ReplayWindow.sample`` (:func:`draw`).

        :raises ValueError: the window holds no training position.
        """
        t, s = draw(len(self._train_rows), len(self._teacher_rows), batch_size, teacher_share, rng)
        return self.gather(np.concatenate([self._teacher_rows[t], self._train_rows[s]]))

    def validation_batches(self, batch_size: int, limit: int = 4096, teacher: bool = False) -> Iterator[TrainBatch]:
        """The newest held-out positions (at most ``limit``), self-play's or the teacher's, built one batch at a time."""
        rows = self._teacher_validation_rows if teacher else self._validation_rows
        rows = rows[-limit:] if limit > 0 else rows[:0]
        for i in range(0, len(rows), batch_size):
            yield self.gather(rows[i : i + batch_size])

    def gather(self, rows: np.ndarray) -> TrainBatch:
        """The batch of window rows ``rows`` (``[B]`` indices into the concatenated chunks)."""
        n, dev = len(rows), self.device
        legal_moves = int((self._offsets[rows + 1] - self._offsets[rows]).sum())  # host: no wait on the device
        pos = _to_device(np.ascontiguousarray(rows, dtype=np.int64), dev)
        # The sparse policies of these rows as one flat index into the policy arrays (as ReplayWindow._gather).
        lo = self.policy_offsets[pos]
        ends = torch.cumsum(self.policy_offsets[pos + 1] - lo, 0)
        # Entry k belongs to batch row (number of rows ending at or before k); a scatter-add then a cumsum
        # (repeat_interleave does the same but is ~50x slower on CPU).
        batch_row = torch.zeros(legal_moves + 1, dtype=torch.int64, device=dev)
        batch_row = batch_row.index_add_(0, ends, torch.ones_like(ends))[:legal_moves].cumsum(0)
        row_start = torch.cat([ends.new_zeros(1), ends[:-1]])
        flat = (lo - row_start)[batch_row] + torch.arange(legal_moves, device=dev)
        index = batch_row * POLICY_SIZE + self.policy_indices[flat].long()
        policy = torch.zeros(n * POLICY_SIZE, device=dev).index_put_((index,), self.policy_probs[flat].float())
        legal = torch.zeros(n * POLICY_SIZE, dtype=torch.bool, device=dev).index_fill_(0, index, True)
        # result 1 -> win (column 0), 0 -> draw (1), -1 -> loss (2)
        wdl = ((1 - self.results[pos].long()).unsqueeze(1) == self._squares[:3]).float()
        return TrainBatch(self._planes(self.records[pos]), policy.view(n, POLICY_SIZE), legal.view(n, POLICY_SIZE),
                          self.full_search[pos].float(), wdl, self.values[pos].float(), self.played_on[pos],
                          self.teacher[pos])

    def _planes(self, records: torch.Tensor) -> torch.Tensor:
        """Input planes ``[B, 20, 8, 8]`` from record bytes ``[B, 99]`` (``encoding.planes_from_positions``)."""
        n = len(records)
        fields = POSITION_DTYPE.fields
        pieces_at, ep_at, flags_at, rule50_at = (fields[k][1] for k in ("pieces", "ep", "flags", "rule50"))
        planes = torch.empty(n, NUM_PLANES, 64, device=self.device)
        # Bitboards little-endian, bit j of byte k is square 8k + j: a1 first, as in python-chess.
        pieces = records[:, pieces_at : pieces_at + 96]
        planes[:, :12] = ((pieces.unsqueeze(2) >> self._shifts) & 1).view(n, 12, 64)
        ep = records[:, ep_at].view(torch.int8).long()  # -1 (no square) matches none
        planes[:, 12] = ep.unsqueeze(1) == self._squares
        planes[:, 13:18] = ((records[:, flags_at].unsqueeze(1) >> self._flag_shifts) & 1).unsqueeze(2)
        planes[:, 18] = (records[:, rule50_at].float() / 100.0).unsqueeze(1)
        planes[:, 19] = 1.0
        return planes.view(n, NUM_PLANES, 8, 8)
