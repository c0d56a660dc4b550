"""Property: over thousands of random legal positions, /move answers a legal move and float probabilities.

Positions come from random games whose move choice favours the rare moves
(promotions, castling, en passant), from sparse boards with pawns about to
promote, and from positions rewritten to sit just before the 50-move rule;
each is sent as the PGN a client would send (movetext, or a FEN header plus
movetext).
"""

from __future__ import annotations

import random

import chess
import chess.pgn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from l4demons.bot import Bot
from l4demons.server import ModelStore, ServeSettings, create_app

from serve_support import tiny_bot  # noqa: F401 - fixture

KINDS = ("game", "game", "promotion", "fifty", "repetition")


def special(board: chess.Board, move: chess.Move) -> bool:
    return bool(move.promotion) or board.is_castling(move) or board.is_en_passant(move)


def random_game(rng: random.Random, board: chess.Board, plies: int) -> chess.Board:
    for _ in range(plies):
        if board.is_game_over():
            break
        moves = list(board.generate_legal_moves())
        rare = [m for m in moves if special(board, m)]
        pushes = [m for m in moves if board.piece_type_at(m.from_square) == chess.PAWN]
        if rare and rng.random() < 0.8:
            move = rng.choice(rare)
        elif pushes and rng.random() < 0.4:  # pawns forward: promotions and en passant come sooner
            move = rng.choice(pushes)
        else:
            move = rng.choice(moves)
        board.push(move)
    if board.is_game_over() and board.move_stack:
        board.pop()  # the position before the end is still a position to move in
    return board


def promotion_board(rng: random.Random) -> chess.Board:
    while True:
        board = chess.Board(None)
        squares = rng.sample(range(64), 8)
        board.set_piece_at(squares[0], chess.Piece(chess.KING, chess.WHITE))
        board.set_piece_at(squares[1], chess.Piece(chess.KING, chess.BLACK))
        for sq in squares[2:6]:
            color = rng.choice([chess.WHITE, chess.BLACK])
            rank = 6 if color == chess.WHITE else 1
            board.set_piece_at(chess.square(chess.square_file(sq), rank), chess.Piece(chess.PAWN, color))
        for sq in squares[6:]:
            board.set_piece_at(sq, chess.Piece(rng.choice([chess.KNIGHT, chess.ROOK, chess.QUEEN]), rng.choice([True, False])))
        board.turn = rng.choice([chess.WHITE, chess.BLACK])
        if board.is_valid() and not board.is_game_over():
            return board


def make_position(seed: int) -> tuple[chess.Board, str]:
    """A position to move in and the PGN that leads to it."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    if kind == "promotion":
        start = promotion_board(rng)
        board = random_game(rng, start.copy(), rng.randrange(0, 6))
    elif kind == "fifty":
        played = random_game(rng, chess.Board(), rng.randrange(20, 120))
        fen = played.fen().split()
        fen[4] = str(rng.randrange(90, 100))  # 1..10 plies before the 50-move rule can be claimed
        start = chess.Board(" ".join(fen))
        board = random_game(rng, start.copy(), rng.randrange(0, 4))
    elif kind == "repetition":
        board = random_game(rng, chess.Board(), rng.randrange(0, 30))
        start = chess.Board()
        for _ in range(rng.randrange(1, 3)):  # shuffle knights back and forth: twofold, threefold
            for move in (m for m in list(board.legal_moves) if board.piece_type_at(m.from_square) == chess.KNIGHT):
                board.push(move)
                back = chess.Move(move.to_square, move.from_square)
                if back in board.legal_moves:
                    board.push(back)
                else:
                    board.pop()
                    continue
                break
    else:
        start = chess.Board()
        board = random_game(rng, chess.Board(), rng.randrange(0, 160))
    game = chess.pgn.Game()
    if start.fen() != chess.STARTING_FEN:
        game.setup(start)
    node = game
    for move in board.move_stack[len(start.move_stack):]:
        node = node.add_variation(move)
    assert not board.is_game_over(), f"generator bug: a finished game for seed {seed}"
    return board, str(game)


@pytest.fixture(scope="module")
def app_client(tiny_bot: Bot):  # noqa: ANN201
    store = ModelStore.ready_with(tiny_bot, origin="random")
    with TestClient(create_app(ServeSettings(), store)) as c:
        yield c


def test_generator_covers_the_rare_moves() -> None:
    seen = {"promotion": 0, "castling": 0, "en_passant": 0, "fifty": 0}
    for seed in range(400):
        board, _ = make_position(seed)
        replay = board.copy()
        while replay.move_stack:
            move = replay.pop()
            seen["promotion"] += bool(move.promotion)
            seen["castling"] += replay.is_castling(move)
            seen["en_passant"] += replay.is_en_passant(move)
        seen["fifty"] += board.halfmove_clock >= 90
    assert all(count >= 10 for count in seen.values()), seen


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), timeleft=st.sampled_from([0, 0, 0, 150]))
def test_move_is_legal_and_probs_are_floats_over_legal_moves(app_client: TestClient, seed: int, timeleft: int) -> None:
    board, pgn = make_position(seed)
    r = app_client.post("/move", json={"pgn": pgn, "timeleft": timeleft})
    assert r.status_code == 200, (r.text, pgn)
    body = r.json()
    legal = {m.uci() for m in board.legal_moves}
    assert body["move"] in legal, pgn
    probs = body["move_probs"]
    assert set(probs) == legal, pgn
    assert all(type(p) is float and 0.0 <= p <= 1.0 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
