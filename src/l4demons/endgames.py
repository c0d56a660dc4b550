"""Simple won endings as self-play starts, so mating patterns are in the data from the first hour.

A net that starts from random weights rarely mates anyone: its games end by
the material count, and the value head never sees how a won position is
won. A share of self-play games (``SelfPlayConfig.endgame_share``) instead
starts from a random legal placement of a simple won ending (king and queen
against king, two rooks, two bishops and the like), either colour the
strong side, either side to move. Those games play to mate, stalemate or
another rule of chess: the material rule and resignation do not end them
(a queen up from the first ply would otherwise be "won" after ten plies,
which teaches nothing), so a net that cannot mate learns that shuffling
is a draw by the fifty-move rule.

The starts depend only on the run's seed and the game's number, so the
Python reference and the compiled core play the same games.
"""

from __future__ import annotations

import chess
import numpy as np

ENDINGS = ("KQvK", "KRvK", "KRRvK", "KQRvK", "KBBvK", "KQvKP")
"""The endings drawn from, named by the strong side's pieces against the weak side's (all won for the strong side
from almost every placement)."""

_PIECES = {"Q": chess.QUEEN, "R": chess.ROOK, "B": chess.BISHOP, "N": chess.KNIGHT, "P": chess.PAWN}


def random_ending(rng: np.random.Generator, name: str | None = None) -> chess.Board:
    """A random legal placement of ``name`` (default: one of :data:`ENDINGS`), not over, side to move random.

    :raises ValueError: ``name`` is not of the form ``K...vK...``.
    """
    name = name or ENDINGS[int(rng.integers(len(ENDINGS)))]
    strong_text, sep, weak_text = name.partition("v")
    if not sep or not strong_text.startswith("K") or not weak_text.startswith("K"):
        raise ValueError(f"an ending is named like KQvK, got {name!r}")
    strong = chess.WHITE if rng.random() < 0.5 else chess.BLACK
    while True:
        board = _place(rng, strong, strong_text[1:], weak_text[1:])
        board.turn = chess.WHITE if rng.random() < 0.5 else chess.BLACK
        if board.is_valid() and board.outcome() is None:
            return board


def _place(rng: np.random.Generator, strong: chess.Color, strong_pieces: str, weak_pieces: str) -> chess.Board:
    board = chess.Board(None)
    free = list(range(64))
    rng.shuffle(free)
    kings = free[:2]
    board.set_piece_at(kings[0], chess.Piece(chess.KING, strong))
    board.set_piece_at(kings[1], chess.Piece(chess.KING, not strong))
    rest = free[2:]
    light_bishop = None  # two bishops of one side go on squares of both colours
    for colour, pieces in ((strong, strong_pieces), (not strong, weak_pieces)):
        for letter in pieces:
            kind = _PIECES[letter]
            for i, square in enumerate(rest):
                if kind == chess.PAWN and chess.square_rank(square) in (0, 7):
                    continue
                if kind == chess.BISHOP:
                    light = bool(chess.BB_LIGHT_SQUARES & chess.BB_SQUARES[square])
                    if light_bishop is not None and light == light_bishop:
                        continue
                    light_bishop = light
                board.set_piece_at(square, chess.Piece(kind, colour))
                del rest[i]
                break
        light_bishop = None
    return board


def starts(n_games: int, share: float, seed: int) -> dict[int, chess.Board]:
    """Game number -> its ending start, for about ``share`` of ``n_games``; the others start from the opening."""
    if share <= 0:
        return {}
    rng = np.random.default_rng([seed % 2**63, 0xE6])
    picks = rng.random(n_games) < share
    return {i: random_ending(rng) for i in range(n_games) if picks[i]}
