"""The hub's own self-play positions as positions for the teacher to label (``pretrain --hub-positions``).

Self-play's replay window holds what the network actually meets: its own
games, at its own strength. A warm start on a hub with history can take
those positions instead of the teacher's games and give each the teacher's
targets, so the net learns the teacher's judgement where it plays.

- :func:`decode_position` turns a packed record back into a board. Records
  are in the side-to-move frame (:mod:`l4demons.encoding`), so the board has
  the side to move as White: the same position up to colour mirroring. The
  teacher's value for it is the side to move's, and a policy index of its
  moves (``move_to_index(move, chess.WHITE)``) is already in the record's
  frame. What a record does not keep is lost: the game's history (the
  repetition flag) and the move number.
- :func:`sample_hub_games` draws up to ``n`` positions uniformly, seeded,
  from the training positions of the window's self-play chunks (held-out
  games stay out: self-play's validation loss must not be trained on), and
  groups them by the game they came from, so the warm start's own hold-out
  keeps whole games apart.
- :func:`label_hub_games` labels one worker's share with the teacher, as the
  teacher's own games are (:func:`l4demons.pretrain.labels.label_row`),
  keeping each position's own record; positions the teacher cannot analyse
  (the game is over) are skipped.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import chess
import chess.engine
import numpy as np

from l4demons.pretrain import labels
from l4demons.replay import ReplayChunk
from l4demons.selfplay import GameRecord

_PIECE_TYPES = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)
_CASTLING_ROOKS = (chess.BB_H1, chess.BB_A1, chess.BB_H8, chess.BB_A8)
"""The rook squares of flags bits 1-4 (own K, own Q, opp K, opp Q) with the side to move as White."""
OPENING_PIECES = 31
"""A game whose first position holds at least this many pieces started from the opening or from it a piece short
(``l4demons.odds``); fewer: from an ending (``l4demons.endgames``)."""


def _from_opening(rec: np.ndarray) -> bool:
    return int(np.unpackbits(np.ascontiguousarray(rec["pieces"]).view(np.uint8)).sum()) >= OPENING_PIECES


def decode_position(rec: np.ndarray) -> chess.Board:
    """The board of one :data:`~l4demons.encoding.POSITION_DTYPE` record, with the side to move as White.

    The inverse of :func:`~l4demons.encoding.encode_position` up to colour mirroring: pieces, castling
    rights, the en passant square and the halfmove clock come back; the repetition flag (it needs the
    game's history) and the move number (1) do not.
    """
    pieces = rec["pieces"]
    piece_map = {}
    for i, pt in enumerate(_PIECE_TYPES):
        for colour, bb in ((chess.WHITE, int(pieces[i])), (chess.BLACK, int(pieces[6 + i]))):
            for square in chess.scan_forward(bb):
                piece_map[square] = chess.Piece(pt, colour)
    board = chess.Board.empty()
    board.set_piece_map(piece_map)
    flags = int(rec["flags"])
    board.castling_rights = sum(rook for k, rook in enumerate(_CASTLING_ROOKS) if flags >> (k + 1) & 1)
    ep = int(rec["ep"])
    board.ep_square = None if ep < 0 else ep
    board.halfmove_clock = int(rec["rule50"])
    return board


@dataclasses.dataclass(frozen=True)
class HubGame:
    """Positions sampled from one self-play game of the hub's window, in the order they were played."""

    positions: np.ndarray
    """[k] of :data:`~l4demons.encoding.POSITION_DTYPE`, as the window holds them."""
    plies: np.ndarray
    """[k] int: each position's game ply, as far as the window tells it (see :func:`sample_hub_games`)."""
    chunk: str = ""
    """The replay chunk the game is in."""
    rows: np.ndarray | None = None
    """[k] int: the positions' rows in that chunk."""

    def __len__(self) -> int:
        return len(self.positions)


def sample_hub_games(chunks: list[ReplayChunk], n: int, rng: np.random.Generator) -> list[HubGame]:
    """Up to ``n`` training positions drawn uniformly without replacement from the self-play ``chunks``
    (teacher chunks are left out), grouped by their game, the games in a random order.

    A record has no move number, yet the teacher's win/draw/loss model depends on the game ply
    (:data:`labels.MODEL_PLY`): a position's ply is its index in its game for a game from the initial
    position (or from it a piece short, ``l4demons.odds``), and ``MODEL_PLY`` past that for one from an ending
    (``l4demons.endgames``).
    """
    selfplay = [c for c in chunks if not c.teacher]
    where = [np.flatnonzero(c.position_mask(False)) for c in selfplay]
    sizes = np.array([len(w) for w in where], np.int64)
    total = int(sizes.sum())
    picked = np.sort(rng.choice(total, size=min(n, total), replace=False)) if total else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    games: list[HubGame] = []
    for k, chunk in enumerate(selfplay):
        mine = picked[(picked >= starts[k]) & (picked < starts[k + 1])] - starts[k]
        rows = where[k][mine]
        game_of = np.searchsorted(chunk.game_offsets, rows, side="right") - 1
        for g in np.unique(game_of):
            first = int(chunk.game_offsets[g])
            ids = rows[game_of == g]
            from_start = _from_opening(chunk.positions[first])
            plies = ids - first + (0 if from_start else labels.MODEL_PLY)
            games.append(HubGame(chunk.positions[ids].copy(), plies.astype(np.int64), chunk.name, ids))
    return [games[i] for i in rng.permutation(len(games))]


def label_hub_games(path: str, games: list[HubGame], limit: chess.engine.Limit, multipv: int, deadline: float,
                    seed: int, should_stop: Callable[[], bool] = lambda: False) -> tuple[list[GameRecord], int]:
    """Label ``games`` with the teacher at ``path`` until ``deadline`` (``time.time()``) or ``should_stop()``;
    one worker's share. ``(one record per game with a labelled position, positions skipped as game over)``.

    Each record keeps the window's own records (repetition flag included); the targets are the
    teacher's for the decoded board, whose policy indices are already in the record's frame.

    :raises TeacherError: the teacher did not start or failed.
    """
    rng = np.random.default_rng(seed)
    records: list[GameRecord] = []
    skipped = 0
    with labels.teacher_session(path) as engine:
        for game in games:
            rows: list[labels.Row] = []
            for rec, ply in zip(game.positions, game.plies):
                if time.time() >= deadline or should_stop():
                    break
                board = decode_position(rec)
                board.fullmove_number = int(ply) // 2 + 1  # White to move: the ply, rounded down to even
                if board.is_game_over() or not board.is_valid():
                    skipped += 1
                    continue
                (_, indices, probs, q), _ = labels.label_row(engine, board, limit, multipv)
                rows.append((rec.copy(), indices, probs, q))
            if rows:
                records.append(labels.record_from_rows(rows, rng))
            if time.time() >= deadline or should_stop():
                break
    return records, skipped
