"""Self-play starts a piece short: legal, a piece short for one side, seeded, and played by the usual rules."""

from __future__ import annotations

import chess
import numpy as np
import pytest

from l4demons import odds
from l4demons.encoding import encode_position, material_balance, piece_value
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, game_starts, play_games


@pytest.mark.parametrize("piece", list(odds.ODDS))
def test_every_odds_start_is_the_opening_one_piece_short(piece: str) -> None:
    rng = np.random.default_rng(3)
    kind = chess.Piece.from_symbol(piece).piece_type
    shorts = set()
    for _ in range(100):
        board = odds.odds_board(rng, piece)
        assert board.is_valid() and board.outcome() is None and board.turn == chess.WHITE
        assert len(board.piece_map()) == 31
        lead = material_balance(board)
        assert abs(lead) == piece_value(kind)
        short = chess.WHITE if lead < 0 else chess.BLACK
        shorts.add(short)
        assert len(board.pieces(kind, short)) == len(chess.Board().pieces(kind, short)) - 1
        assert board.castling_rights == board.clean_castling_rights()
        if piece == "R":  # the missing rook's side can no longer castle that way
            rook_squares = chess.SquareSet(chess.BB_CORNERS) & chess.SquareSet(board.castling_rights)
            assert len(rook_squares) == 3
    assert shorts == {chess.WHITE, chess.BLACK}


def test_a_bad_piece_is_refused() -> None:
    with pytest.raises(ValueError, match="odds are one of"):
        odds.odds_board(np.random.default_rng(0), "K")
    with pytest.raises(ValueError, match="odds_share"):
        SelfPlayConfig(odds_share=1.5)


def test_starts_follow_the_share_and_the_seed() -> None:
    starts = odds.starts(2000, 0.1, seed=5)
    assert 150 < len(starts) < 250
    assert {i: b.fen() for i, b in starts.items()} == {i: b.fen() for i, b in odds.starts(2000, 0.1, 5).items()}
    assert odds.starts(100, 0.0, 5) == {}


def test_a_game_drawn_for_both_starts_from_the_ending() -> None:
    given = game_starts(400, SelfPlayConfig(odds_share=0.5, endgame_share=0.5), seed=1)
    kinds = [ending for _, ending in given.values()]
    assert 0 < kinds.count(False) and 0 < kinds.count(True) and len(given) > 250
    for board, ending in given.values():
        assert (len(board.piece_map()) == 31) != ending


def test_odds_games_start_a_piece_short_and_the_material_rule_still_ends_them() -> None:
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=60, odds_share=1.0, material_win=3,
                         material_win_plies=2, play_on_simulations=0, concurrent_games=4)
    games = play_games(Evaluator(build_network(NetConfig.from_name("tiny"), seed=0)), cfg, 4,
                       np.random.default_rng(4), compiled=False)
    opening = encode_position(chess.Board()).tobytes()
    assert all(g.positions[0].tobytes() != opening for g in games)
    assert {g.termination for g in games} == {"material"}  # an ending would never end by material
