"""Board -> network input, and legal move <-> policy index.

Everything is seen from the side to move: when Black is to move the board is
mirrored (ranks flipped, colours swapped), so the network only ever plays
"up the board". This halves what it must learn, as in AlphaZero and Lc0.

Positions are first packed into a compact record (:data:`POSITION_DTYPE`,
99 bytes: twelve piece bitboards plus a few scalars), and input planes are
unpacked from a batch of records with numpy. Self-play stores the records in
its replay window, and the search encodes its leaves the same way, so the
learner and the search can never disagree about what a position looks like.

Input planes ``[batch, 20, 8, 8]`` (row = rank 1..8, column = file a..h, in
the side to move's frame):

====  =================================================================
0-5   own pawn, knight, bishop, rook, queen, king
6-11  opponent's pawn .. king
12    en passant target square (only when an en passant capture is legal)
13    position has occurred before (repetition)
14-17 castling rights: own king side, own queen side, opp king, opp queen
18    halfmove clock / 100 (the fifty-move rule)
19    all ones (lets convolutions see the board edge)
====  =================================================================

Policy: AlphaZero's 8x8x73 map, ``index = from_square * 73 + move_type``
(4672 entries). Move types 0-55 are queen-like moves (8 directions x 7
distances, queen promotions included), 56-63 knight moves, 64-72
under-promotions (3 directions x knight/bishop/rook). Castling is the king's
two-square move, as python-chess writes it.
"""

from __future__ import annotations

import chess
import numpy as np

ENCODING_VERSION = 1
"""Bumped whenever planes or the policy map change; stored in checkpoints."""

NUM_PLANES = 20
POLICY_SIZE = 64 * 73

POSITION_DTYPE = np.dtype(
    [
        ("pieces", "<u8", (12,)),  # bitboards, side-to-move frame
        ("ep", "i1"),  # en passant square in that frame, -1 if none
        ("flags", "u1"),  # bit 0 repetition, bits 1-4 castling (own K, own Q, opp K, opp Q)
        ("rule50", "u1"),  # halfmove clock, capped at 255
    ]
)

_PIECE_TYPES = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)

# Directions as (file delta, rank delta): N, NE, E, SE, S, SW, W, NW.
_QUEEN_DIRS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
_KNIGHT_DELTAS = ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2))
_UNDERPROMOTIONS = (chess.KNIGHT, chess.BISHOP, chess.ROOK)
_BB_ATTR = {chess.PAWN: "pawns", chess.KNIGHT: "knights", chess.BISHOP: "bishops",
            chess.ROOK: "rooks", chess.QUEEN: "queens", chess.KING: "kings"}


def _build_move_table() -> np.ndarray:
    """``table[from, to, promo]`` -> policy index or -1, in the side-to-move frame.

    ``promo`` is 0 for none/queen, else the piece type (2 knight, 3 bishop,
    4 rook); a queen promotion shares the plain queen-like move's index.
    """
    table = np.full((64, 64, 5), -1, dtype=np.int32)
    for frm in range(64):
        f0, r0 = chess.square_file(frm), chess.square_rank(frm)
        for d, (df, dr) in enumerate(_QUEEN_DIRS):
            for dist in range(1, 8):
                f, r = f0 + df * dist, r0 + dr * dist
                if 0 <= f < 8 and 0 <= r < 8:
                    table[frm, chess.square(f, r), 0] = frm * 73 + d * 7 + (dist - 1)
        for k, (df, dr) in enumerate(_KNIGHT_DELTAS):
            f, r = f0 + df, r0 + dr
            if 0 <= f < 8 and 0 <= r < 8:
                table[frm, chess.square(f, r), 0] = frm * 73 + 56 + k
        if r0 == 6:  # pawn on the seventh rank, moving up
            for k, df in enumerate((-1, 0, 1)):
                f = f0 + df
                if 0 <= f < 8:
                    for p, piece in enumerate(_UNDERPROMOTIONS):
                        table[frm, chess.square(f, 7), piece] = frm * 73 + 64 + k * 3 + p
    return table


_MOVE_TABLE = _build_move_table()
_MOVE_INDEX: list[int] = _MOVE_TABLE.reshape(-1).tolist()  # flat list: fastest lookup from Python


def move_to_index(move: chess.Move, turn: chess.Color) -> int:
    """The policy index of ``move`` played by ``turn``.

    :raises ValueError: the move has no index (not a chess move shape).
    """
    flip = 0 if turn == chess.WHITE else 56
    promo = move.promotion if move.promotion and move.promotion != chess.QUEEN else 0
    idx = _MOVE_INDEX[((move.from_square ^ flip) * 64 + (move.to_square ^ flip)) * 5 + promo]
    if idx < 0:
        raise ValueError(f"move {move.uci()} has no policy index")
    return idx


def legal_moves_and_indices(board: chess.Board) -> tuple[list[chess.Move], list[int]]:
    """All legal moves of ``board`` with their policy indices (same order)."""
    flip = 0 if board.turn == chess.WHITE else 56
    table = _MOVE_INDEX
    moves = list(board.generate_legal_moves())  # not list(board.legal_moves), which generates them twice
    indices = []
    for m in moves:
        promo = m.promotion if m.promotion and m.promotion != chess.QUEEN else 0
        indices.append(table[((m.from_square ^ flip) * 64 + (m.to_square ^ flip)) * 5 + promo])
    return moves, indices


def _build_move_decoder() -> list[tuple[int, int, int] | None]:
    """``decoder[index]`` -> ``(from, to, promo)`` of :data:`_MOVE_TABLE` (side-to-move frame), or None."""
    decoder: list[tuple[int, int, int] | None] = [None] * POLICY_SIZE
    for frm, to, promo in zip(*np.nonzero(_MOVE_TABLE >= 0)):
        decoder[int(_MOVE_TABLE[frm, to, promo])] = (int(frm), int(to), int(promo))
    return decoder


_MOVE_DECODER = _build_move_decoder()


def index_to_move(index: int, board: chess.Board) -> chess.Move:
    """The legal move of ``board`` whose policy index is ``index``.

    :raises ValueError: no legal move has that index.
    """
    decoded = _MOVE_DECODER[index] if 0 <= index < POLICY_SIZE else None
    if decoded is not None:
        flip = 0 if board.turn == chess.WHITE else 56
        frm, to, promo = decoded[0] ^ flip, decoded[1] ^ flip, decoded[2]
        if not promo and board.piece_type_at(frm) == chess.PAWN and chess.square_rank(to) in (0, 7):
            promo = chess.QUEEN  # a queen promotion has the plain move's index
        move = chess.Move(frm, to, promo or None)
        if board.is_legal(move):
            return move
    raise ValueError(f"policy index {index} is not a legal move in {board.fen()}")


def encode_position(board: chess.Board, out: np.ndarray | None = None) -> np.ndarray:
    """Pack ``board`` into one :data:`POSITION_DTYPE` record (side-to-move frame)."""
    rec = np.zeros((), dtype=POSITION_DTYPE) if out is None else out
    us = board.turn
    them = not us
    occ = board.occupied_co
    pieces = rec["pieces"]
    if us == chess.WHITE:
        for i, pt in enumerate(_PIECE_TYPES):
            mask = getattr(board, _BB_ATTR[pt])
            pieces[i] = mask & occ[us]
            pieces[6 + i] = mask & occ[them]
        ep_flip = 0
    else:
        for i, pt in enumerate(_PIECE_TYPES):
            mask = getattr(board, _BB_ATTR[pt])
            pieces[i] = chess.flip_vertical(mask & occ[us])
            pieces[6 + i] = chess.flip_vertical(mask & occ[them])
        ep_flip = 56
    ep = board.ep_square if board.ep_square is not None and board.has_legal_en_passant() else None
    rec["ep"] = -1 if ep is None else ep ^ ep_flip
    # A repetition needs at least four reversible plies; skip the scan before that.
    flags = 1 if board.halfmove_clock >= 4 and board.is_repetition(2) else 0
    cr = board.castling_rights
    flags |= (bool(cr & (chess.BB_H1 if us else chess.BB_H8))) << 1
    flags |= (bool(cr & (chess.BB_A1 if us else chess.BB_A8))) << 2
    flags |= (bool(cr & (chess.BB_H8 if us else chess.BB_H1))) << 3
    flags |= (bool(cr & (chess.BB_A8 if us else chess.BB_A1))) << 4
    rec["flags"] = flags
    rec["rule50"] = min(board.halfmove_clock, 255)
    return rec



def encode_positions(boards: list[chess.Board]) -> np.ndarray:
    """Pack several boards; shape ``[len(boards)]`` of :data:`POSITION_DTYPE`."""
    recs = np.zeros(len(boards), dtype=POSITION_DTYPE)
    for i, b in enumerate(boards):
        encode_position(b, recs[i])
    return recs


PIECE_VALUES = np.array([1, 3, 3, 5, 9, 0], dtype=np.int64)
"""Pawn, knight, bishop, rook, queen, king: the one material count of the project (records, boards, the grabber)."""


def piece_value(piece_type: chess.PieceType) -> int:
    """Textbook value of a piece type in pawns (a king counts 0)."""
    return int(PIECE_VALUES[piece_type - 1])


def material_balance(board: chess.Board, color: chess.Color = chess.WHITE) -> int:
    """Material of ``color`` minus the opponent's, in pawns (White's lead by default)."""
    total = 0
    for piece_type in range(chess.PAWN, chess.KING):
        total += piece_value(piece_type) * (chess.popcount(board.pieces_mask(piece_type, color))
                                            - chess.popcount(board.pieces_mask(piece_type, not color)))
    return total


def piece_counts(recs: np.ndarray) -> np.ndarray:
    """int64 ``[n, 12]``: pieces per bitboard of records ``[n]`` (the side to move's pawn..king, then the opponent's)."""
    if recs.dtype != POSITION_DTYPE:
        raise ValueError("piece counts take POSITION_DTYPE records")
    bits = np.unpackbits(np.ascontiguousarray(recs["pieces"]).view(np.uint8).reshape(len(recs), 12, 8), axis=2)
    return bits.sum(axis=2).astype(np.int64)


def material_lead(recs: np.ndarray) -> np.ndarray:
    """Material of the side to move minus the opponent's, in pawns, of records ``[n]`` (int64 ``[n]``)."""
    counts = piece_counts(recs)
    return counts[:, :6] @ PIECE_VALUES - counts[:, 6:] @ PIECE_VALUES


def planes_from_positions(recs: np.ndarray) -> np.ndarray:
    """Unpack records into float32 input planes ``[batch, 20, 8, 8]``."""
    n = recs.shape[0]
    planes = np.zeros((n, NUM_PLANES, 64), dtype=np.float32)
    # Little-endian bit order puts square a1 (bit 0) first, matching python-chess squares.
    bits = np.unpackbits(np.ascontiguousarray(recs["pieces"]).view(np.uint8), bitorder="little")
    planes[:, :12, :] = bits.reshape(n, 12, 64)
    ep = recs["ep"].astype(np.int64)
    has_ep = ep >= 0
    planes[np.nonzero(has_ep)[0], 12, ep[has_ep]] = 1.0
    flags = recs["flags"]
    planes[:, 13, :] = (flags & 1)[:, None]
    for k in range(4):
        planes[:, 14 + k, :] = ((flags >> (k + 1)) & 1)[:, None]
    planes[:, 18, :] = (recs["rule50"].astype(np.float32) / 100.0)[:, None]
    planes[:, 19, :] = 1.0
    return planes.reshape(n, NUM_PLANES, 8, 8)


def board_to_planes(board: chess.Board) -> np.ndarray:
    """Input planes ``[20, 8, 8]`` of one board (convenience for tests and tools)."""
    return planes_from_positions(encode_positions([board]))[0]
