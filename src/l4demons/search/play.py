"""The bot's search: PUCT as a batch source, compiled when the core is there, the Python reference otherwise.

Both kinds answer the same questions (``started``, ``done``, ``visits``,
``nodes``, ``max_depth``, ``result()``, ``principal_variation()``) and take
part in :func:`l4demons.search.run_step` the same way, so the bot does not
care which one it drives.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import chess
import numpy as np

from l4demons import core
from l4demons.search.batch import BatchBuffers, LeafSource, write_leaves
from l4demons.search.compiled import CompiledPuct
from l4demons.search.puct import PuctConfig, PuctSearch
from l4demons.search.tree import Leaf, SearchResult


class PlaySearch(Protocol):
    started: bool
    done: bool
    nodes: int
    visits: int
    max_depth: int

    def collect(self, buffers: BatchBuffers) -> None: ...

    def reuse(self, old: PlaySearch, path: Sequence[chess.Move]) -> bool: ...

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None: ...

    def result(self) -> SearchResult: ...

    def principal_variation(self, max_len: int = 20) -> list[chess.Move]: ...


class ReferencePuct:
    """The Python :class:`~l4demons.search.puct.PuctSearch` as a batch source, limited to ``root_moves``."""

    def __init__(self, board: chess.Board, cfg: PuctConfig = PuctConfig(),
                 root_moves: Collection[chess.Move] | None = None) -> None:
        self.search = PuctSearch(board.copy(), cfg)
        self.root_moves = frozenset(root_moves) if root_moves else None
        self._leaves: list[Leaf] = []

    def collect(self, buffers: BatchBuffers) -> None:
        fresh = self.search.root is None
        self._leaves = self.search.collect()
        if fresh and self.root_moves is not None:  # the root leaf: search the allowed moves only
            (root,) = self._leaves
            keep = [i for i, m in enumerate(root.moves) if m in self.root_moves]
            if keep:
                root.moves = [root.moves[i] for i in keep]
                root.indices = [root.indices[i] for i in keep]
        write_leaves(buffers, self._leaves)

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None:
        LeafSource(self._leaves).deliver(logits, values)

    def reuse(self, old: PlaySearch, path: Sequence[chess.Move]) -> bool:
        """The reference keeps no trees between moves: every search starts at its root."""
        return False

    @property
    def started(self) -> bool:
        return self.search.root is not None and self.search.root.expanded

    @property
    def done(self) -> bool:
        return self.search.done

    @property
    def nodes(self) -> int:
        return self.search.nodes

    @property
    def visits(self) -> int:
        return self.search.visits

    @property
    def max_depth(self) -> int:
        return self.search.max_depth

    def result(self) -> SearchResult:
        return self.search.result()

    def principal_variation(self, max_len: int = 20) -> list[chess.Move]:
        return self.search.principal_variation(max_len)


def puct_search(board: chess.Board, cfg: PuctConfig = PuctConfig(),
                root_moves: Collection[chess.Move] | None = None) -> PlaySearch:
    """A PUCT search of ``board`` (compiled when :func:`l4demons.core.enabled` and the board is standard chess)."""
    if core.enabled() and core.supports(board):
        return CompiledPuct(board, cfg, root_moves)
    return ReferencePuct(board, cfg, root_moves)
