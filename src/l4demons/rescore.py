"""Known wins: the results of self-play games that reach an ending chess already decides.

Lc0 rescores its training games with Syzygy tablebases: once a game reaches a
position the tables know, the game's result becomes the tables' verdict, so
a net that cannot yet convert a won ending is not taught that the ending is
a draw. This project has no tablebases, but it has the same problem in its
simplest form. Decided games are played on with 4-simulation searches
(``SelfPlayConfig.play_on_simulations``), and a young net does not know how
to mate with a king and queen against a bare king. In a 30-minute run from
random weights, 487 of 1,040 games reached king and queen (or rook) against
a bare king, and 362 of those were drawn, by the fifty-move rule, repetition
or the length cap. The value head learned from those labels that a queen up
is worth about 0.1.

A king with a queen or a rook (whatever else it has) against a bare king is
a win from every position where the lone king cannot take the piece at once
and is not already stalemated. So the rule here asks that the ending hold
across a move of the lone king, which leaves out a piece that is taken at
once. From the first such move to the last position where the ending still
holds, every position's result is the stronger side's win. Positions before
that stretch get the same result, since the game is decided by it as the
tables would decide it. Positions after it keep the result the game
actually had: the stronger side gave the piece away, so that result is what
they lead to.
"""

from __future__ import annotations

import numpy as np

from l4demons.encoding import piece_counts

_ROOK, _QUEEN = 3, 4
"""Bitboard rows of a record's side to move (the opponent's are 6 higher)."""


def known_winner(recs: np.ndarray) -> np.ndarray:
    """int8 ``[n]`` for records ``[n]``: +1 where the side to move has a known win (a queen or a rook against a bare
    king), -1 where the opponent has, 0 elsewhere."""
    counts = piece_counts(recs)
    ours, theirs = counts[:, :6], counts[:, 6:]
    us_win = (theirs[:, :5].sum(axis=1) == 0) & (ours[:, _ROOK] + ours[:, _QUEEN] > 0)
    them_win = (ours[:, :5].sum(axis=1) == 0) & (theirs[:, _ROOK] + theirs[:, _QUEEN] > 0)
    return us_win.astype(np.int8) - them_win.astype(np.int8)


def rescored_results(positions: np.ndarray, results: np.ndarray) -> np.ndarray | None:
    """One game's results (``[n]`` int8, side to move's view) with its known win applied (see the module's
    docstring); None when the game reaches no known win or its results already agree."""
    winner = known_winner(positions)
    first_mover = np.where(np.arange(len(winner)) % 2 == 0, 1, -1).astype(np.int8)  # side to move, from ply 0's view
    white_view = winner * first_mover  # +1: the first mover wins
    # The lone king to move, and the ending still there after its move: the piece was not left to be taken.
    held = np.flatnonzero((winner[:-1] == -1) & (white_view[:-1] == white_view[1:]))
    if len(held) == 0:
        return None
    side = white_view[held[0]]
    last = int(np.flatnonzero(white_view == side)[-1])  # at or after held[0], which is one of them
    out = results.copy()
    out[: last + 1] = side * first_mover[: last + 1]
    return None if np.array_equal(out, results) else out
