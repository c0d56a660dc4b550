"""The replay window on the learner's device: batches assembled where they are trained on.

:class:`DeviceWindow` holds the window's arrays copied once to the
learner's device (each time the window changes). A step sends only the
batch's row numbers across (pinned and non-blocking on CUDA); the rows are
gathered, unpacked into input planes and scattered into dense policy
targets and legal-move masks there, bit for bit the batch
:meth:`l4demons.replay.ReplayWindow.sample` builds on the host.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np
import torch

from l4demons.encoding import NUM_PLANES, POLICY_SIZE, POSITION_DTYPE
from l4demons.replay import Batch, ReplayChunk, draw


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
    material: torch.Tensor
    """[B] float32: the side to move's material lead a few plies later, in pawns (``ReplayChunk.material``)."""

    def __len__(self) -> int:
        return len(self.planes)

    @classmethod
    def from_batch(cls, batch: Batch, device: str | torch.device = "cpu") -> TrainBatch:
        """A host :class:`Batch` on ``device`` (the reference for :meth:`DeviceWindow.sample`)."""
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        return cls(t(batch.planes), t(batch.policy), t(batch.legal), t(batch.policy_weight), t(batch.wdl),
                   t(batch.search_value), t(batch.played_on), t(batch.teacher), t(batch.material))


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
        self.material = cat("material", np.int8)
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
                          self.teacher[pos], self.material[pos].float())

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
