"""The compiled search core (``l4demons._core``): is it here, and the bridge from python-chess.

The core is a C++17 extension built by ``pip install`` (``setup.py``, sources
in ``l4demons/_core/``): bitboard move generation and the game-end rules,
the input encoding, the Gumbel and PUCT trees and the self-play scheduler.
Self-play and the bot use it whenever :func:`enabled` says so; otherwise
they run the pure-Python search, which stays as the reference the tests
compare the core against. ``L4D_CORE=0`` switches the core off (tests use
it to run the reference); a core that is missing or stale is reported by
one log line at first use.

Moves cross the boundary as 16-bit codes ``from | to << 6 | promotion << 12``
(python-chess square and piece numbers).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

import chess
import numpy as np

log = logging.getLogger(__name__)

ABI = 5
"""The interface version this Python code speaks; the extension reports its own."""


def _load() -> tuple[ModuleType | None, str | None]:
    try:
        from l4demons import _core
    except ImportError as e:
        return None, f"it is not built ({e})"
    version = getattr(_core, "ABI", None)  # without the compiled module, the source folder imports as a namespace
    if version is None:
        return None, "it is not built (no compiled l4demons._core next to its sources)"
    if version != ABI:
        return None, f"the built module speaks interface {version}, this code needs {ABI}"
    return _core, None


_core, _problem = _load()
_reported = False


def enabled() -> bool:
    """True when the compiled core is built, current, and not switched off with ``L4D_CORE=0``."""
    global _reported
    if os.environ.get("L4D_CORE", "1").strip() == "0":
        return False
    if _core is None:
        if not _reported:
            _reported = True
            log.warning("compiled search core unavailable: %s; using the pure-Python search, several times slower "
                        "(rebuild with `make setup` or `pip install -e .`)", _problem)
        return False
    return True


def module() -> ModuleType:
    """The extension module itself (check :func:`enabled` first).

    :raises RuntimeError: the core is not available.
    """
    if _core is None:
        raise RuntimeError(f"the compiled search core is unavailable: {_problem}")
    return _core


def supports(board: chess.Board) -> bool:
    """Whether the core plays this board's rules (standard chess; not Chess960 or variants)."""
    return type(board) is chess.Board and not board.chess960


def move_code(move: chess.Move) -> int:
    return move.from_square | (move.to_square << 6) | ((move.promotion or 0) << 12)


def code_move(code: int) -> chess.Move:
    return chess.Move(code & 63, (code >> 6) & 63, (code >> 12) or None)


def code_moves(codes: np.ndarray) -> list[chess.Move]:
    return [code_move(c) for c in codes.tolist()]


def position(board: chess.Board):  # -> _core.Position
    """The board as a core position: its starting position replayed through its move stack (for repetitions).

    :raises ValueError: the board is not standard chess, or lacks a king.
    """
    if not supports(board):
        raise ValueError("the compiled core plays standard chess only (no Chess960 or variants)")
    root = board.root()
    return module().Position(
        [root.pawns, root.knights, root.bishops, root.rooks, root.queens, root.kings],
        [root.occupied_co[chess.WHITE], root.occupied_co[chess.BLACK]],
        0 if root.turn == chess.WHITE else 1,
        root.castling_rights,
        -1 if root.ep_square is None else root.ep_square,
        root.halfmove_clock,
        root.fullmove_number,
        [move_code(m) for m in board.move_stack],
    )
