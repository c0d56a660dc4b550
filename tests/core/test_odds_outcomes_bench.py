"""bench/odds_outcomes.py: odds games are told apart from level ones, and scored for the side with the piece."""

from __future__ import annotations

import chess
import numpy as np

from l4demons.encoding import encode_positions
from l4demons.replay import ReplayChunk


def chunk_of(games: list[tuple[chess.Board, int, float]]) -> ReplayChunk:
    """One position per game: its start, the game's result and the search value (side to move's view)."""
    n = len(games)
    return ReplayChunk(
        name="000001-test", positions=encode_positions([b for b, _, _ in games]),
        policy_offsets=np.zeros(n + 1, dtype=np.int64), policy_indices=np.zeros(0, dtype=np.uint16),
        policy_probs=np.zeros(0, dtype=np.float16), full_search=np.zeros(n, dtype=bool),
        results=np.array([r for _, r, _ in games], dtype=np.int8),
        values=np.array([v for _, _, v in games], dtype=np.float16),
        game_offsets=np.arange(n + 1, dtype=np.int64), validation=np.zeros(n, dtype=bool))


def test_odds_games_are_scored_for_the_side_with_the_extra_piece(bench_script) -> None:
    bench = bench_script("odds_outcomes")
    white_short_knight = chess.Board()
    white_short_knight.remove_piece_at(chess.B1)
    black_short_queen = chess.Board()
    black_short_queen.remove_piece_at(chess.D8)
    after_a_trade = chess.Board("rnbqkb1r/pppppppp/8/8/8/8/PPPPPPPP/R1BQKBNR w KQkq - 0 3")  # one knight each
    games = [(white_short_knight, 1, 0.25), (black_short_queen, 1, 0.5), (chess.Board(), 1, 0.0),
             (after_a_trade, -1, 0.0)]
    # White to move in each: a White win is -1 for Black (the knight's side), +1 for White (the queen's side).
    assert bench.odds_games(chunk_of(games)) == [("knight", -1, -0.25), ("queen", 1, 0.5)]
