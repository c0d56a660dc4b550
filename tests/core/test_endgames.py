"""Self-play starts from simple won endings: legal, decided, and played to a rule of chess."""

from __future__ import annotations

import os
import shutil

import chess
import chess.engine
import numpy as np
import pytest

from l4demons import endgames
from l4demons.encoding import encode_position, material_balance
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


@pytest.mark.parametrize("name", endgames.ENDINGS)
def test_every_ending_is_a_legal_position_that_is_not_over(name: str) -> None:
    rng = np.random.default_rng(3)
    strong, weak = name.split("v")
    for _ in range(200):
        board = endgames.random_ending(rng, name)
        assert board.is_valid() and board.outcome() is None and not board.castling_rights
        colours = {c for c in (chess.WHITE, chess.BLACK) if len(board.pieces(chess.KING, c)) == 1}
        assert colours == {chess.WHITE, chess.BLACK}
        assert len(board.piece_map()) == len(strong) + len(weak)  # every piece placed
        bishops = [s for s in chess.SquareSet(board.bishops)]
        if len(bishops) == 2:
            assert bool(chess.BB_LIGHT_SQUARES & chess.BB_SQUARES[bishops[0]]) != \
                bool(chess.BB_LIGHT_SQUARES & chess.BB_SQUARES[bishops[1]]), "two bishops of one colour cannot mate"


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(ValueError, match="KQvK"):
        endgames.random_ending(np.random.default_rng(0), "QvK")


def test_starts_follow_the_share_and_the_seed() -> None:
    starts = endgames.starts(2000, 0.1, seed=5)
    assert 150 < len(starts) < 250
    assert {i: b.fen() for i, b in starts.items()} == {i: b.fen() for i, b in endgames.starts(2000, 0.1, 5).items()}
    assert endgames.starts(100, 0.0, 5) == {}


@pytest.mark.skipif(shutil.which("stockfish") is None and not os.path.exists("/usr/games/stockfish"),
                    reason="needs Stockfish")
def test_the_starts_are_won_for_the_side_with_more_material() -> None:
    from l4demons.elo.engines import find_stockfish

    rng = np.random.default_rng(11)
    boards = [endgames.random_ending(rng) for _ in range(40)]
    with chess.engine.SimpleEngine.popen_uci(find_stockfish()) as engine:
        won = 0
        for board in boards:
            score = engine.analyse(board, chess.engine.Limit(depth=12))["score"].white()
            material = material_balance(board)
            won += (score.score(mate_score=100_000) or 0) * np.sign(material) >= 400
    assert won >= 36, f"only {won} of 40 starts are won for the stronger side"  # a few lose the queen at once


def test_games_from_endings_end_by_a_rule_of_chess_not_by_material_or_resignation() -> None:
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=120, endgame_share=1.0, material_win=3,
                         material_win_plies=2, resign_threshold=0.9, resign_moves=1, resign_playthrough=0.0,
                         adjudicate_material=0, concurrent_games=8)
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    games = play_games(ev, cfg, 8, np.random.default_rng(4))
    opening = encode_position(chess.Board()).tobytes()
    assert len(games) == 8
    for g in games:
        assert g.termination in ("checkmate", "stalemate", "insufficient", "fifty_moves", "repetition", "max_plies")
        assert g.positions[0].tobytes() != opening, "every game started from an ending"
