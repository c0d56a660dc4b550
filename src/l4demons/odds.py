"""Material-odds starts: the opening a piece short, so what material is worth is in the data from the first hour.

Games that all start level meet a material lead only after trades, late and
in positions of their own kind; the opening with a queen missing is a
position the net has never seen, and its value there is a guess (after an
hour from random weights the value head put a queen up at +0.15). KataGo
trains on handicap games beside even ones for the same reason. A share of
self-play games (``SelfPlayConfig.odds_share``) starts from the initial
position with one piece of one side removed (a queen, a rook, a bishop or a
knight, either side, White to move, castling rights cleaned) and is played
by the same rules as any other game, the material rule and play-on
included, so its label is the odds game's real outcome.

The starts depend only on the run's seed and the game's number, so the
Python reference and the compiled core play the same games.
"""

from __future__ import annotations

import chess
import numpy as np

ODDS = {"Q": "d", "R": "ah", "B": "cf", "N": "bg"}
"""The pieces a side may start without, with the back-rank files they stand on."""


def odds_board(rng: np.random.Generator, piece: str | None = None) -> chess.Board:
    """The initial position without one ``piece`` (default: one of :data:`ODDS`) of a random side.

    :raises ValueError: ``piece`` is not one of :data:`ODDS`.
    """
    piece = piece or list(ODDS)[int(rng.integers(len(ODDS)))]
    if piece not in ODDS:
        raise ValueError(f"odds are one of {', '.join(ODDS)}, got {piece!r}")
    short = chess.WHITE if rng.random() < 0.5 else chess.BLACK
    files = ODDS[piece]
    square = chess.parse_square(files[int(rng.integers(len(files)))] + ("1" if short == chess.WHITE else "8"))
    board = chess.Board()
    board.remove_piece_at(square)
    board.castling_rights = board.clean_castling_rights()
    return board


def starts(n_games: int, share: float, seed: int) -> dict[int, chess.Board]:
    """Game number -> its odds start, for about ``share`` of ``n_games``; the others start level."""
    if share <= 0:
        return {}
    rng = np.random.default_rng([seed % 2**63, 0x0DD5])
    picks = rng.random(n_games) < share
    return {i: odds_board(rng) for i in range(n_games) if picks[i]}
