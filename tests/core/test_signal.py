"""The learning signal end to end: targets read back from the replay window, and a net that learns material.

If the encoding's mirror, the result's sign for the side to move or the
loss were wrong, self-play would train for hours and learn nothing; these
tests say so in seconds (the probes of :mod:`l4demons.probes`).
"""

from __future__ import annotations

import chess
import numpy as np
import pytest

from l4demons.encoding import encode_position, legal_moves_and_indices, planes_from_positions
from l4demons.losses import value_target
from l4demons.probes import probe
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.selfplay import GameRecord, SelfPlayConfig
from l4demons.selfplay.reference import Game


def _scripted_game(fen: str, moves: list[str], cfg: SelfPlayConfig) -> GameRecord:
    """Play ``moves`` through self-play's own game logic, with uniform search policies."""
    from l4demons.search.tree import SearchResult

    game = Game(cfg, np.random.default_rng(0))
    game.board = chess.Board(fen)
    for uci in moves:
        legal, indices = legal_moves_and_indices(game.board)
        policy = np.full(len(legal), 1.0 / len(legal), dtype=np.float32)
        result = SearchResult(chess.Move.from_uci(uci), legal, np.asarray(indices, np.int32), policy, 0.5, 1)
        game.record(result, full=True)
        game.play(result.move, 0.5)
        if game.outcome is not None:
            break
    return game.finish()


def test_targets_read_back_from_the_window_match_the_game():
    # White is a queen up; the material rule ends the game as a White win after two plies.
    cfg = SelfPlayConfig(material_win=5, material_win_plies=2, resign_threshold=-1.0, play_on_simulations=0)
    fen = "4k3/8/8/8/8/8/8/3QK3 w - - 0 1"
    game = _scripted_game(fen, ["d1d2", "e8e7", "d2d3", "e7e8"], cfg)
    assert game.termination == "material" and len(game) == 2
    chunk = ReplayChunk.from_games("000001-signal", [game], validation_every=0)
    window = ReplayWindow()
    window.add(chunk)
    batch = window._gather(np.zeros(len(game), np.int64), np.arange(len(game)))
    board = chess.Board(fen)
    for i, uci in enumerate(["d1d2", "e8e7"]):
        mover_is_white = board.turn == chess.WHITE
        # the result, from the side to move's view: White won
        assert batch.wdl[i].tolist() == ([1.0, 0.0, 0.0] if mover_is_white else [0.0, 0.0, 1.0])
        # the planes are the position, seen from the side to move (own pieces first, own king on plane 5)
        assert np.array_equal(batch.planes[i], planes_from_positions(np.array([encode_position(board)]))[0])
        own_king = batch.planes[i][5]
        king_sq = board.king(board.turn) ^ (0 if mover_is_white else 56)
        assert own_king[king_sq // 8, king_sq % 8] == 1 and own_king.sum() == 1
        # the policy target covers exactly the legal moves
        _, indices = legal_moves_and_indices(board)
        assert set(np.nonzero(batch.legal[i])[0]) == set(indices)
        assert abs(batch.policy[i].sum() - 1) < 1e-3
        board.push(chess.Move.from_uci(uci))
    # the search value (0.5 for the mover) is mixed in from the mover's view too
    mixed = value_target(batch, 0.5)
    assert mixed[0, 0] > mixed[0, 2] and mixed[1, 2] > mixed[1, 0]


@pytest.mark.parametrize("value_head", ["pool", "fc"])
def test_a_net_learns_material_from_the_materials_label(value_head, material_net):
    before, net = material_net(value_head)  # trained in tests/conftest.py (4000 positions, 400 steps), once a session
    after = probe(net)
    assert after.sees_material, after.summary()
    assert after.ahead["queen"] - after.behind["queen"] > 0.3, after.summary()
    assert after.capture_mass > max(2 * after.uniform_mass, before.capture_mass), after.summary()


def test_the_tests_that_share_a_trained_net_share_a_worker(material_net, request):
    """Under ``--dist loadgroup`` (the Makefile's) a test that asks for :func:`material_net` carries its group,
    so the net trains once a run; pytest 9.2 made xdist's grouping a silent no-op (pyproject.toml pins below)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under pytest-xdist's --dist loadgroup only")
    assert request.node.nodeid.endswith("@material_net"), request.node.nodeid
