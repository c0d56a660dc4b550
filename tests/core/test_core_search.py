"""The compiled searches against the Python reference: same network, same noise, same results.

The network runs in float64 (core_support.Float64Net) so a position gets
the same answer in any batch; the Gumbels come from the same SplitMix64
stream. Then both implementations must choose the same move, search the
same number of nodes and produce the same policy target (to float32
rounding: the float64 sums may differ in their last bits).
"""

from __future__ import annotations

import chess
import numpy as np
import pytest

from l4demons.search import Evaluator, GumbelConfig, GumbelSearch, PuctConfig, run_searches, run_step
from l4demons.search.compiled import CompiledGumbel, CompiledPuct
from l4demons.search.noise import NoiseStream
from l4demons.search.play import ReferencePuct

from core_support import BlindToMove, Float64Net, is_mate, require_core, run_play

POSITIONS = [
    chess.Board(),
    chess.Board("r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"),  # mate in one
    chess.Board("r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1"),
    chess.Board("8/P1k5/K7/8/8/8/8/8 w - - 0 1"),  # promotions
    chess.Board("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"),
    chess.Board("8/2k5/5r2/1P1n2K1/8/8/8/4q3 b - - 1 63"),  # mate in two: Qg3+
]


def with_history() -> chess.Board:
    """A game whose next knight shuffle repeats a position: the search must see the history."""
    board = chess.Board()
    for uci in ["g1f3", "g8f6", "f3g1", "f6g8", "g1f3", "g8f6"]:
        board.push_uci(uci)
    return board


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    require_core()
    return Evaluator(Float64Net("tiny", seed=11))


def assert_same(a, b) -> None:  # noqa: ANN001 - two SearchResults
    assert a.moves == b.moves
    assert np.array_equal(a.indices, b.indices)
    assert a.move == b.move
    assert a.nodes == b.nodes
    np.testing.assert_allclose(a.policy, b.policy, rtol=0, atol=1e-6)
    assert a.value == pytest.approx(b.value, abs=1e-9)


@pytest.mark.parametrize("board", POSITIONS + [with_history()], ids=["start", "mate1", "kiwipete", "promo", "backrank", "mate2", "history"])
@pytest.mark.parametrize("sims,m", [(32, 16), (8, 16), (50, 4)])
def test_gumbel_matches_the_reference(evaluator: Evaluator, board: chess.Board, sims: int, m: int) -> None:
    cfg = GumbelConfig(simulations=sims, max_considered=m)
    for seed in (1, 2):
        reference = GumbelSearch(board.copy(), cfg, NoiseStream(seed), sims)
        run_searches([reference], evaluator)
        compiled = CompiledGumbel(board, cfg, seed, sims)
        buffers = evaluator.new_buffers()
        while not compiled.done:
            run_step([compiled], evaluator, buffers)
        assert_same(reference.result(), compiled.result())


@pytest.mark.parametrize("board", POSITIONS + [with_history()], ids=["start", "mate1", "kiwipete", "promo", "backrank", "mate2", "history"])
def test_puct_matches_the_reference(evaluator: Evaluator, board: chess.Board) -> None:
    cfg = PuctConfig(batch_size=8)
    reference = run_play(ReferencePuct(board, cfg), evaluator, 300)
    compiled = run_play(CompiledPuct(board, cfg), evaluator, 300)
    assert_same(reference.result(), compiled.result())
    assert (reference.visits, reference.max_depth) == (compiled.visits, compiled.max_depth)
    assert reference.principal_variation() == compiled.principal_variation()


@pytest.mark.parametrize("temp", [0.7, 1.6])
def test_puct_policy_temperature_matches_the_reference(evaluator: Evaluator, temp: float) -> None:
    for board in (POSITIONS[0], POSITIONS[2]):  # no mate at once: the priors steer the visits
        cfg = PuctConfig(batch_size=8, policy_temp=temp)
        reference = run_play(ReferencePuct(board, cfg), evaluator, 200)
        compiled = run_play(CompiledPuct(board, cfg), evaluator, 200)
        assert_same(reference.result(), compiled.result())
        root = reference.search.root
        p = np.exp((root.logits - root.logits.max()) / temp)
        np.testing.assert_allclose(root.prior, p / p.sum(), rtol=1e-12)
        plain = run_play(CompiledPuct(board, PuctConfig(batch_size=8)), evaluator, 200)
        assert not np.allclose(plain.result().policy, compiled.result().policy)  # the temperature is used


def test_puct_root_moves_restriction_matches_the_reference(evaluator: Evaluator) -> None:
    board = chess.Board()
    allowed = [chess.Move.from_uci(u) for u in ("g2g3", "b1c3", "e2e4")]
    reference = run_play(ReferencePuct(board, PuctConfig(), allowed), evaluator, 100)
    compiled = run_play(CompiledPuct(board, PuctConfig(), allowed), evaluator, 100)
    assert compiled.result().moves == [chess.Move.from_uci(u) for u in ("b1c3", "g2g3", "e2e4")]  # legal-move order
    assert_same(reference.result(), compiled.result())


def test_compiled_searches_find_mate_with_a_uniform_network(uniform_net) -> None:  # noqa: ANN001
    require_core()
    ev = Evaluator(uniform_net)
    board = POSITIONS[1]
    n_legal = board.legal_moves.count()
    gumbel = CompiledGumbel(board, GumbelConfig(simulations=2 * n_legal + 2, max_considered=n_legal), seed=0)
    buffers = ev.new_buffers()
    while not gumbel.done:
        run_step([gumbel], ev, buffers)
    assert gumbel.result().move.uci() == "h5f7"
    assert run_play(CompiledPuct(board), ev, 300).result().move.uci() == "h5f7"


@pytest.mark.parametrize("board", [POSITIONS[1], POSITIONS[4]], ids=["mate1", "backrank"])
def test_compiled_searches_play_a_mate_at_once_the_policy_rules_out(board: chess.Board) -> None:
    require_core()
    mate = next(m for m in board.legal_moves if board.gives_check(m) and is_mate(board, m))
    ev = Evaluator(BlindToMove(board, mate.uci()))
    gumbel = CompiledGumbel(board, GumbelConfig(simulations=32, max_considered=4), seed=0)
    buffers = ev.new_buffers()
    while not gumbel.done:
        run_step([gumbel], ev, buffers)
    r = gumbel.result()
    assert (r.move, r.nodes) == (mate, 1) and r.policy[r.moves.index(mate)] > 0.5
    r = run_play(CompiledPuct(board), ev, 300).result()
    assert (r.move, r.nodes, r.value) == (mate, 1, 1.0)


def test_a_single_repetition_ends_a_search_line_but_not_the_game() -> None:
    require_core()
    from l4demons import core

    board = with_history()
    board.push_uci("f3g1")  # the position after the third ply, a second time
    pos = core.position(board)
    assert pos.terminal_value(True) == 0.0  # inside a search: a draw
    assert pos.terminal_value(False) is None and pos.game_over() is None  # the game goes on until threefold
