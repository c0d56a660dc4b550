"""The mate probe: its puzzles are sound, and the search alone finds mate in one."""

from __future__ import annotations

import chess
import numpy as np

from core_support import allows_mate_in_one, is_mate
from l4demons.network import NetConfig, build_network
from l4demons.probes import mate_probe, mate_puzzles, random_positions


def test_the_stored_material_positions_are_what_the_generator_gives(material_positions) -> None:
    """The material net trains on stored positions; they are what ``random_positions`` gives from seed 0."""
    assert len(material_positions) == 4000
    assert [b.fen() for b in material_positions[:100]] == [b.fen() for b in random_positions(100, np.random.default_rng(0))]


def test_every_stored_solution_keeps_the_mate() -> None:
    puzzles = mate_puzzles()
    assert len(puzzles["mate_in_1"]) >= 100 and len(puzzles["mate_in_2"]) >= 100
    for p in puzzles["mate_in_1"]:
        board = chess.Board(p["fen"])
        assert p["solutions"]
        for uci in p["solutions"]:
            board.push_uci(uci)  # raises on an illegal move
            assert board.is_checkmate(), (p["fen"], uci)
            board.pop()
    for p in puzzles["mate_in_2"]:
        board = chess.Board(p["fen"])
        assert p["solutions"] and not any(board.gives_check(m) and is_mate(board, m) for m in board.legal_moves)
        board.push_uci(p["solutions"][0])
        assert not board.is_game_over() and all(allows_mate_in_one(board, r) for r in list(board.legal_moves)), p["fen"]


def test_the_search_finds_mate_in_one_with_an_untrained_net() -> None:
    """Mate in one needs no knowledge at 200 nodes, so the probe's mate-in-2 share is the one that measures learning."""
    result = mate_probe(build_network(NetConfig.from_name("tiny"), seed=0), nodes=200, limit=10)
    assert result.mate_in_1 >= 0.9 and result.puzzles == 10, result.summary()
