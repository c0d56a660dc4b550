"""Known wins: a queen or a rook against a bare king is scored as the stronger side's win, from the game's start to
the last position the ending holds, and only when the piece survived a move of the lone king."""

from __future__ import annotations

import dataclasses

import chess
import numpy as np
import pytest

from l4demons import core
from l4demons.encoding import encode_positions
from l4demons.network import NetConfig, build_network
from l4demons.rescore import known_winner, rescored_results
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


def _boards(start_fen: str, moves: list[str]) -> list[chess.Board]:
    """The positions played: the start and each position after a move but the last (the final one is not kept)."""
    board = chess.Board(start_fen)
    out = [board.copy()]
    for uci in moves[:-1]:
        board.push_uci(uci)
        out.append(board.copy())
    return out


@pytest.mark.parametrize(("fen", "expected"), [
    ("8/8/8/4k3/8/8/8/KQ6 w - - 0 1", 1),  # the queen's side to move
    ("8/8/8/4k3/8/8/8/KQ6 b - - 0 1", -1),  # the lone king to move
    ("8/8/8/4k3/8/8/P7/KR6 w - - 0 1", 1),  # a rook and more
    ("8/8/8/4K3/8/8/8/kr6 w - - 0 1", -1),  # black's rook
    ("8/8/8/4k3/8/8/8/KBB5 w - - 0 1", 0),  # two bishops: not this rule's
    ("8/8/8/4k3/7p/8/8/KQ6 w - - 0 1", 0),  # the other king is not bare
    (chess.STARTING_FEN, 0),
])
def test_known_winner_sees_a_queen_or_rook_against_a_bare_king(fen: str, expected: int) -> None:
    assert known_winner(encode_positions([chess.Board(fen)]))[0] == expected


def test_a_drawn_won_ending_becomes_the_stronger_sides_win_for_the_whole_game() -> None:
    # White captures black's last piece, then both shuffle until the game is drawn by repetition.
    moves = ["b1b8", "e5d5", "b8b1", "d5e5", "b1b2", "e5e6", "b2b1", "e6e5", "b1b2", "e5e6", "b2b1", "e6e5"]
    boards = _boards("1n6/8/8/4k3/8/8/8/KQ6 w - - 0 1", moves)
    results = np.zeros(len(boards), dtype=np.int8)
    out = rescored_results(encode_positions(boards), results)
    assert out is not None
    assert list(out) == [1 if b.turn == chess.WHITE else -1 for b in boards]


def test_a_piece_taken_at_once_is_no_known_win() -> None:
    # The queen checks next to the lone king, which takes it: king against king, a draw that stays a draw.
    boards = _boards("8/8/8/8/8/1k6/8/2Q4K w - - 0 1", ["c1c2", "b3c2"])
    assert known_winner(encode_positions(boards)).tolist() == [1, -1]
    assert rescored_results(encode_positions(boards), np.zeros(len(boards), dtype=np.int8)) is None


def test_positions_after_the_piece_is_given_away_keep_the_games_result() -> None:
    # A won rook ending, then the rook is left to the king: king and pawn against king after that, drawn.
    moves = ["b1b2", "e5e4", "b2d2", "e4e3", "d2d1", "e3e2", "d1d8", "e2e3", "d8d3", "e3d3", "a1b1", "d3c3"]
    boards = _boards("8/8/8/4k3/8/8/P7/KR6 w - - 0 1", moves)
    winner = known_winner(encode_positions(boards))
    last = max(i for i, w in enumerate(winner) if w)
    results = np.zeros(len(boards), dtype=np.int8)
    out = rescored_results(encode_positions(boards), results)
    assert out is not None
    assert list(out[: last + 1]) == [1 if b.turn == chess.WHITE else -1 for b in boards[: last + 1]]
    assert not out[last + 1:].any() and last + 1 < len(boards)


def test_a_game_the_stronger_side_won_is_left_alone() -> None:
    boards = _boards("8/8/8/4k3/8/8/8/KQ6 w - - 0 1", ["b1b2", "e5e6", "b2b1"])
    won = np.array([1 if b.turn == chess.WHITE else -1 for b in boards], dtype=np.int8)
    assert rescored_results(encode_positions(boards), won) is None


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.skipif(
    not core.enabled(), reason="compiled core not built"))])
def test_self_play_rescores_its_games_and_plays_them_alike(compiled: bool) -> None:
    """Rescoring changes the labels only: the same seed plays the same games; the drawn known wins become wins."""
    base = SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=24, adjudicate_material=0, endgame_share=1.0,
                          concurrent_games=8)
    evaluator = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    plain = play_games(evaluator, base, 8, np.random.default_rng(2), compiled=compiled)
    scored = play_games(evaluator, dataclasses.replace(base, rescore_known_wins=True), 8, np.random.default_rng(2),
                        compiled=compiled)
    assert [g.moves for g in scored] == [g.moves for g in plain]
    assert any(g.rescored for g in scored)
    for p, s in zip(plain, scored):
        expected = rescored_results(p.positions, p.results)
        assert s.rescored == (expected is not None) and not p.rescored
        assert np.array_equal(s.results, p.results if expected is None else expected)
