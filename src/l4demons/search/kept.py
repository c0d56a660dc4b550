"""Tree reuse between the moves of a game (Lc0's): finished searches kept, and handed on.

A bot keeps its last few finished searches (:data:`KEPT_TREES`, so several
games at once each find theirs). A new search of a position 1 to
:data:`REUSE_PLIES` plies past a kept search's root, in the same game,
starts from the subtree that search grew below it, visits and values
included (:meth:`l4demons.search.compiled.CompiledPuct.reuse`). A game is
known by the board's start and move stack, so a bare FEN starts afresh.
Each kept tree is continued at most once. Thread-safe.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

import chess

from l4demons.search.play import PlaySearch

KEPT_TREES = 4
"""Finished searches kept: enough for as many games at once."""

REUSE_PLIES = 4
"""The most plies a kept tree's root may lie behind the position asked about."""


@dataclasses.dataclass(frozen=True, eq=False)
class _Kept:
    """A finished search and the game it searched: where it started and the moves to its root."""

    start_fen: str
    moves: list[chess.Move]
    search: PlaySearch


class KeptTrees:
    """The finished searches a bot keeps, and the hand-on (see the module docstring)."""

    def __init__(self, capacity: int = KEPT_TREES) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._kept: collections.deque[_Kept] = collections.deque()  # guarded by _lock

    def continue_tree(self, search: PlaySearch, board: chess.Board) -> bool:
        """Give ``search`` (fresh, of ``board``) the subtree a kept search of this game grew below ``board``;
        whether one did."""
        stack, start_fen = board.move_stack, board.root().fen()
        with self._lock:
            for kept in self._kept:
                behind = len(stack) - len(kept.moves)
                if (1 <= behind <= REUSE_PLIES and kept.start_fen == start_fen
                        and stack[:len(kept.moves)] == kept.moves):
                    self._kept.remove(kept)
                    break
            else:
                return False
        return search.reuse(kept.search, stack[len(kept.moves):])

    def keep(self, search: PlaySearch, board: chess.Board) -> list[PlaySearch]:
        """Keep ``search``, finished, of ``board``; returns the searches it pushed out (the caller frees them)."""
        kept = _Kept(board.root().fen(), list(board.move_stack), search)
        with self._lock:
            self._kept.append(kept)
            return [self._kept.popleft().search for _ in range(len(self._kept) - self.capacity)]
