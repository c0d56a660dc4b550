"""The compiled board against python-chess on 100,000 positions: legal moves, game end, records and planes.

Positions come from random games (some drawn toward repetitions, some
toward captures and promotions, some plain and long enough for the
fifty-move rule) and from compiled self-play games. For every position the
core must give exactly what the Python reference gives: the legal moves in
the same order with the same policy indices, ``selfplay.game_over``,
``tree.terminal_value`` inside and outside a search, and the 99-byte record;
the input planes are compared in blocks against ``planes_from_positions``.
"""

from __future__ import annotations

import collections
import random

import chess
import numpy as np

from l4demons import core
from l4demons.encoding import POSITION_DTYPE, encode_position, legal_moves_and_indices, planes_from_positions
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.search.tree import terminal_value
from l4demons.selfplay import SelfPlayConfig, game_over, play_games

from core_support import require_core

POSITIONS = 100_000
PLANE_BLOCK = 4096


class Checker:
    """Compares one position at a time; keeps what the positions covered."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: collections.Counter[str] = collections.Counter()
        self.records: list[bytes] = []
        self.planes = np.zeros((PLANE_BLOCK, 20, 8, 8), dtype=np.float32)

    def check(self, board: chess.Board, pos) -> list[chess.Move]:  # noqa: ANN001 - a core Position
        moves, indices = legal_moves_and_indices(board)
        codes = pos.legal_moves().tolist()
        assert codes == [core.move_code(m) for m in moves], board.fen()
        assert pos.policy_indices().tolist() == indices, board.fen()
        record = encode_position(board).tobytes()
        assert pos.record() == record, board.fen()
        over = game_over(board)
        assert pos.game_over() == over, board.fen()
        assert pos.terminal_value(True) == terminal_value(board, bool(moves), True), board.fen()
        assert pos.terminal_value(False) == terminal_value(board, bool(moves), False), board.fen()
        assert pos.key == pos.key_from_scratch
        pos.write_planes(self.planes[len(self.records)])
        self.records.append(record)
        if len(self.records) == PLANE_BLOCK:
            self.flush_planes()
        self.count += 1
        self._note(board, moves, over)
        return moves

    def flush_planes(self) -> None:
        n = len(self.records)
        recs = np.frombuffer(b"".join(self.records), dtype=POSITION_DTYPE)
        assert np.array_equal(self.planes[:n], planes_from_positions(recs))
        self.records.clear()

    def _note(self, board: chess.Board, moves: list[chess.Move], over: tuple[str, int] | None) -> None:
        if over:
            self.seen[over[0]] += 1
        if board.has_legal_en_passant():
            self.seen["en passant"] += 1
        if any(board.is_castling(m) for m in moves):
            self.seen["castling"] += 1
        if any(m.promotion and m.promotion != chess.QUEEN for m in moves):
            self.seen["under-promotion"] += 1
        if board.is_check():
            self.seen["check"] += 1
        if board.halfmove_clock >= 4 and board.is_repetition(2):
            self.seen["repetition flag"] += 1


def pick(rng: random.Random, board: chess.Board, moves: list[chess.Move], style: str) -> chess.Move:
    if style == "repeat" and len(board.move_stack) >= 2 and rng.random() < 0.4:
        back = board.move_stack[-2]
        undo = chess.Move(back.to_square, back.from_square)
        if undo in moves:
            return undo
    if style == "capture" and rng.random() < 0.7:
        forcing = [m for m in moves if board.is_capture(m) or m.promotion]
        if forcing:
            return rng.choice(forcing)
    return rng.choice(moves)


def play_random(checker: Checker, rng: random.Random, style: str) -> None:
    board = chess.Board()
    pos = core.position(board)
    while checker.count < POSITIONS:
        moves = checker.check(board, pos)
        if game_over(board) or len(board.move_stack) >= 600:
            return
        move = pick(rng, board, moves, style)
        board.push(move)
        pos.push(core.move_code(move))


def replay(checker: Checker, ucis: list[str]) -> None:
    board = chess.Board()
    pos = core.position(board)
    for uci in ucis:
        checker.check(board, pos)
        board.push_uci(uci)
        pos.push(core.move_code(board.peek()))
    checker.check(board, pos)


def test_core_matches_python_chess_on_100k_positions() -> None:
    require_core()
    checker = Checker()
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=1))
    games = play_games(ev, SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=200, concurrent_games=16,
                                          material_win=0, adjudicate_material=0), 16, np.random.default_rng(5))
    for g in games:
        replay(checker, g.moves)
    rng = random.Random(2024)
    styles = ["plain", "repeat", "capture"]
    i = 0
    while checker.count < POSITIONS:
        play_random(checker, rng, styles[i % 3])
        i += 1
    checker.flush_planes()
    assert checker.count >= POSITIONS
    for kind in ["checkmate", "stalemate", "insufficient", "fifty_moves", "repetition", "en passant", "castling",
                 "under-promotion", "check", "repetition flag"]:
        assert checker.seen[kind] > 0, f"no position covered {kind}: {dict(checker.seen)}"
