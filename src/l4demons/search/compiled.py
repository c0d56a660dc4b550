"""The compiled searches (:mod:`l4demons.core`) as batch sources, with the Python reference's results.

:class:`CompiledPuct` is the bot's search; :class:`CompiledGumbel` is one
self-play move's search, for tests and tools (self-play itself runs all its
games inside the core's scheduler). Both write their leaves straight into
the shared batch buffers and read the network's answers from the arrays
the evaluator returns; see :mod:`l4demons.search.batch`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import chess
import numpy as np

from l4demons import core
from l4demons.search.batch import MAX_MOVES, BatchBuffers
from l4demons.search.gumbel import GumbelConfig
from l4demons.search.puct import PuctConfig
from l4demons.search.tree import SearchResult


class _CompiledSource:
    """What both compiled searches share: batch writing and reading, and the result."""

    def __init__(self, search, rows: int, *collect_args: int) -> None:  # noqa: ANN001 - a _core search
        self._search = search
        self._rows = rows  # the most leaves one collect writes
        self._args = collect_args

    def collect(self, buffers: BatchBuffers) -> None:
        buffers.reserve(self._rows, self._rows * MAX_MOVES)
        rows, flats = self._search.collect(buffers.planes, buffers.flat, buffers.rows, buffers.flats, *self._args)
        buffers.rows += rows
        buffers.flats += flats

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None:
        self._search.deliver(logits, values)

    @property
    def done(self) -> bool:
        return self._search.done

    @property
    def nodes(self) -> int:
        return self._search.nodes

    def result(self) -> SearchResult:
        """PUCT: the best move so far; Gumbel: the move to play and the improved policy (call when ``done``)."""
        action, codes, indices, policy, value = self._search.result()
        moves = core.code_moves(codes)
        return SearchResult(move=moves[action], moves=moves, indices=indices.astype(np.int32),
                            policy=policy.astype(np.float32), value=float(value), nodes=self.nodes)


class CompiledPuct(_CompiledSource):
    """PUCT with virtual loss (see :mod:`l4demons.search.puct`), compiled; optionally limited to ``root_moves``."""

    def __init__(self, board: chess.Board, cfg: PuctConfig = PuctConfig(),
                 root_moves: Collection[chess.Move] | None = None) -> None:
        allowed = [core.move_code(m) for m in root_moves] if root_moves else []
        search = core.module().PuctSearch(core.position(board), cfg.c_puct, cfg.fpu_reduction, allowed,
                                          cfg.policy_temp)
        super().__init__(search, cfg.batch_size, cfg.batch_size)

    def reuse(self, old: CompiledPuct, path: Sequence[chess.Move]) -> bool:
        """Tree reuse: continue ``old``'s tree below ``path`` (the moves from its root to this one) as this
        search's tree. Only on a fresh search without ``root_moves``, and only when that node was evaluated
        and no move there mates at once; returns whether it did."""
        if not isinstance(old, CompiledPuct):
            return False
        return self._search.reuse(old._search, [core.move_code(m) for m in path])

    @property
    def started(self) -> bool:
        """The root has been evaluated (a result exists)."""
        return self._search.started

    @property
    def visits(self) -> int:
        return self._search.visits

    @property
    def max_depth(self) -> int:
        return self._search.max_depth

    def principal_variation(self, max_len: int = 20) -> list[chess.Move]:
        return core.code_moves(self._search.principal_variation(max_len))


class CompiledGumbel(_CompiledSource):
    """One Gumbel AlphaZero search (see :mod:`l4demons.search.gumbel`), its Gumbels drawn from ``NoiseStream(seed)``."""

    def __init__(self, board: chess.Board, cfg: GumbelConfig, seed: int, simulations: int | None = None) -> None:
        c = core.module()
        params = c.GumbelParams(cfg.max_considered, cfg.c_visit, cfg.c_scale, cfg.gumbel_scale)
        sims = cfg.simulations if simulations is None else simulations
        # a round visits each considered root move at most once
        super().__init__(c.GumbelSearch(core.position(board), sims, params, seed), max(1, cfg.max_considered))
