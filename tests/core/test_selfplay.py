import dataclasses

import chess
import numpy as np

from l4demons.encoding import encode_position, material_balance
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, game_over, play_games
from l4demons.selfplay.reference import Game

FAST = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=60, concurrent_games=4)


def test_games_contain_only_legal_moves_and_consistent_records():
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    games = play_games(ev, FAST, 6, np.random.default_rng(0))
    assert len(games) == 6
    for g in games:
        board = chess.Board()
        assert len(g.moves) == len(g)
        for i, uci in enumerate(g.moves):
            move = chess.Move.from_uci(uci)
            assert board.is_legal(move), f"illegal {uci} in {board.fen()}"
            assert encode_position(board).tobytes() == g.positions[i].tobytes()
            lo, hi = g.policy_offsets[i], g.policy_offsets[i + 1]
            assert hi - lo == board.legal_moves.count()
            assert abs(float(g.policy_probs[lo:hi].astype(np.float32).sum()) - 1) < 1e-2
            board.push(move)
        assert g.termination
        # results alternate with the side to move and agree with the end
        if g.termination == "checkmate":
            assert board.is_checkmate() and g.results[-1] == 1  # the last mover delivered mate
        assert set(np.unique(g.results)) <= {-1, 0, 1}


def test_max_length_adjudication_by_material():
    cfg = SelfPlayConfig(max_plies=2, adjudicate_material=3, resign_threshold=-1.0)  # two plies from here
    game = Game(cfg, np.random.default_rng(0))
    game.board = chess.Board("4k3/8/8/8/8/8/8/QQ2K3 w - - 0 1")
    game.play(chess.Move.from_uci("e1e2"), 0.0)
    assert game.outcome is None
    game.play(chess.Move.from_uci("e8e7"), 0.0)
    assert game.outcome == ("max_plies", 1)
    even = Game(SelfPlayConfig(max_plies=2, adjudicate_material=0), np.random.default_rng(0))
    even.board = chess.Board("4k3/8/8/8/8/8/8/QQ2K3 w - - 0 1")
    even.play(chess.Move.from_uci("e1e2"), 0.0)
    even.play(chess.Move.from_uci("e8e7"), 0.0)
    assert even.outcome == ("max_plies", 0)


def test_resignation_after_consecutive_lost_evaluations():
    cfg = SelfPlayConfig(resign_threshold=-0.9, resign_moves=2, resign_playthrough=0.0)
    game = Game(cfg, np.random.default_rng(0))
    for uci, value in [("e2e4", -0.95), ("e7e5", 0.9), ("d2d4", -0.99)]:
        game.play(chess.Move.from_uci(uci), value)
    assert game.outcome == ("resign", -1)


def test_played_out_games_report_false_resignations():
    cfg = SelfPlayConfig(resign_threshold=-0.9, resign_moves=1, resign_playthrough=1.0, max_plies=4, adjudicate_material=0)
    game = Game(cfg, np.random.default_rng(0))
    for uci in ["e2e4", "e7e5", "g1f3", "b8c6"]:
        game.play(chess.Move.from_uci(uci), -0.95 if uci == "e2e4" else 0.0)
    assert game.outcome == ("max_plies", 0)
    assert game.would_resign == chess.WHITE


def test_rules_end_games():
    assert game_over(chess.Board("7k/6Q1/6K1/8/8/8/8/8 b - - 0 1")) == ("checkmate", 1)
    assert game_over(chess.Board("7k/8/6QK/8/8/8/8/8 b - - 0 1")) == ("stalemate", 0)
    assert game_over(chess.Board("7k/8/8/8/8/8/8/6K1 w - - 0 1")) == ("insufficient", 0)
    assert material_balance(chess.Board()) == 0


def test_a_held_material_lead_wins():
    cfg = SelfPlayConfig(material_win=5, material_win_plies=3, resign_threshold=-1.0, play_on_simulations=0)
    game = Game(cfg, np.random.default_rng(0))
    game.board = chess.Board("4k3/8/8/8/8/8/8/QQ2K3 w - - 0 1")
    for uci in ["e1e2", "e8e7"]:
        game.play(chess.Move.from_uci(uci), 0.0)
        assert game.outcome is None
    game.play(chess.Move.from_uci("e2e3"), 0.0)
    assert game.outcome == ("material", 1)
    off = Game(SelfPlayConfig(material_win=0), np.random.default_rng(0))
    off.board = chess.Board("4k3/8/8/8/8/8/8/QQ2K3 w - - 0 1")
    for uci in ["e1e2", "e8e7", "e2e3", "e7e6"]:
        off.play(chess.Move.from_uci(uci), 0.0)
    assert off.outcome is None


def test_moves_are_sampled_before_sample_plies_and_the_searchs_best_after():
    """Past --sample-plies the move is the search's best: with a fixed net and every search full, games from
    different random streams play the same moves from there on; before it they differ."""
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    base = SelfPlayConfig(simulations=8, fast_simulations=8, full_search_prob=1.0, max_plies=24, material_win=0,
                          resign_threshold=-1.0, concurrent_games=4, odds_share=0.0)  # every game from the opening

    def moves(sample_plies: int, compiled: bool) -> set[tuple[str, ...]]:
        cfg = dataclasses.replace(base, sample_plies=sample_plies)
        return {tuple(g.moves) for g in play_games(ev, cfg, 4, np.random.default_rng(1), compiled=compiled)}

    for compiled in (False, True):
        assert len(moves(0, compiled)) == 1, "greedy from the first ply: every game the same"
        assert len(moves(24, compiled)) == 4, "sampled throughout: every game its own"
        assert len({m[:6] for m in moves(6, compiled)}) == 4, "sampled for the first six plies"
