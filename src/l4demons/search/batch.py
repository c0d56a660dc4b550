"""One network call for the leaves of many searches: the batch, and the loop step that fills and answers it.

Every search, compiled or Python, is a *source*: ``collect(buffers)`` writes
the leaves it wants evaluated now into shared host buffers, and
``deliver(logits, values)`` takes the answers for exactly those leaves.
:func:`run_step` is the one evaluate-and-deliver step that self-play, the
bot and :func:`l4demons.search.run_searches` all use.

A batch is two arrays (:class:`LeafBatch`):

- ``planes [rows, 20, 8, 8]`` float32, the leaves' input planes;
- ``flat [entries]`` int64, for each leaf in order, the positions
  ``row * 4672 + policy index`` of its legal moves in the flattened policy
  output, so the network's caller gathers only the legal logits (on the
  device) and copies back ``entries`` floats instead of ``rows x 4672``.

On a GPU the buffers are pinned, so the copies to the device do not block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from l4demons.encoding import NUM_PLANES, POLICY_SIZE, planes_from_positions

if TYPE_CHECKING:
    from l4demons.search.evaluator import Evaluator
    from l4demons.search.tree import Leaf

MAX_MOVES = 256
"""Room for one position's legal moves (the most any position has is 218)."""


@dataclasses.dataclass(frozen=True)
class LeafBatch:
    """One network call's input (host tensors; views of :class:`BatchBuffers`)."""

    planes: torch.Tensor
    """[rows, 20, 8, 8] float32 input planes."""
    flat: torch.Tensor
    """[entries] int64: each leaf's legal moves as positions in the flattened [rows * 4672] policy."""

    @property
    def rows(self) -> int:
        return self.planes.shape[0]


class BatchBuffers:
    """Host memory that sources write one batch into; grows on demand, pinned for a GPU."""

    def __init__(self, rows: int = 64, pin: bool = False) -> None:
        self.pin = pin
        self.rows = 0
        """Leaves written so far in this batch."""
        self.flats = 0
        """Legal-move entries written so far in this batch."""
        self._allocate(rows, rows * 40)

    def _allocate(self, rows: int, flats: int) -> None:
        old = getattr(self, "_planes_t", None)
        planes = torch.empty((rows, NUM_PLANES, 8, 8), dtype=torch.float32, pin_memory=self.pin)
        flat = torch.zeros(flats, dtype=torch.int64, pin_memory=self.pin)
        if old is not None:
            planes[: self.rows] = old[: self.rows]
            flat[: self.flats] = self._flat_t[: self.flats]
        self._planes_t, self._flat_t = planes, flat
        self.planes = planes.numpy()
        """[capacity, 20, 8, 8] float32 view the sources write into."""
        self.flat = flat.numpy()
        """[capacity] int64 view the sources write into."""

    def reserve(self, rows: int, flats: int) -> None:
        """Make room for ``rows`` more leaves with ``flats`` more legal moves in all."""
        need_rows, need_flats = self.rows + rows, self.flats + flats
        if need_rows > self.planes.shape[0] or need_flats > self.flat.shape[0]:
            self._allocate(max(need_rows, 2 * self.planes.shape[0]), max(need_flats, 2 * self.flat.shape[0]))

    def clear(self) -> None:
        self.rows = self.flats = 0

    def batch(self) -> LeafBatch:
        return LeafBatch(self._planes_t[: self.rows], self._flat_t[: self.flats])


class Source(Protocol):
    """A search (or many) that wants leaves evaluated."""

    def collect(self, buffers: BatchBuffers) -> None:
        """Write the leaves wanted now at ``buffers.rows`` / ``buffers.flats`` and advance both."""

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None:
        """The answers for the leaves of the last ``collect``: their legal logits concatenated, and values."""


def run_step(sources: Sequence[Source], evaluator: Evaluator, buffers: BatchBuffers) -> int:
    """Collect from every source, evaluate all their leaves in one call, hand the answers back.

    Returns how many leaves were evaluated (0: no source wanted any, no call made).
    """
    buffers.clear()
    spans = []
    for source in sources:
        row, flat = buffers.rows, buffers.flats
        source.collect(buffers)
        spans.append((source, row, buffers.rows, flat, buffers.flats))
    if buffers.rows == 0:
        return 0
    logits, values = evaluator.evaluate(buffers.batch())
    for source, r0, r1, f0, f1 in spans:
        if r1 > r0:
            source.deliver(logits[f0:f1], values[r0:r1])
    return buffers.rows


class LeafSource:
    """Python-reference leaves (:class:`l4demons.search.tree.Leaf`) as a source; answers go to each leaf's owner."""

    def __init__(self, leaves: list[Leaf]) -> None:
        self.leaves = leaves

    def collect(self, buffers: BatchBuffers) -> None:
        write_leaves(buffers, self.leaves)

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None:
        start = 0
        for leaf, v in zip(self.leaves, values):
            end = start + len(leaf.indices)
            leaf.owner.deliver(leaf, logits[start:end], float(v))
            start = end


def write_leaves(buffers: BatchBuffers, leaves: list[Leaf]) -> None:
    """Encode Python-reference leaves into the batch (the planes as ``planes_from_positions`` makes them)."""
    if not leaves:
        return
    lengths = np.fromiter((len(leaf.indices) for leaf in leaves), dtype=np.int64, count=len(leaves))
    total = int(lengths.sum())
    buffers.reserve(len(leaves), total)
    r0, f0 = buffers.rows, buffers.flats
    buffers.planes[r0 : r0 + len(leaves)] = planes_from_positions(np.stack([leaf.record for leaf in leaves]))
    rows = np.repeat(np.arange(r0, r0 + len(leaves), dtype=np.int64), lengths)
    indices = np.fromiter((i for leaf in leaves for i in leaf.indices), dtype=np.int64, count=total)
    buffers.flat[f0 : f0 + total] = rows * POLICY_SIZE + indices
    buffers.rows += len(leaves)
    buffers.flats += total


def run_searches(searches: Sequence, evaluator: Evaluator) -> None:
    """Drive Python-reference searches (``collect() -> leaves``, ``done``) to completion, batching all their leaves."""
    active = list(searches)
    buffers = evaluator.new_buffers()
    while active:
        leaves = [leaf for s in active for leaf in s.collect()]
        run_step([LeafSource(leaves)], evaluator, buffers)
        active = [s for s in active if not s.done]
