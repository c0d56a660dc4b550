import chess
import numpy as np
import pytest

from l4demons.bot import Bot
from l4demons.search import Evaluator, GumbelConfig, GumbelSearch, PuctConfig, PuctSearch, run_searches, run_step
from l4demons.search.batch import LeafSource
from l4demons.search.gumbel import halving_schedule
from l4demons.search.puct import CPU_BATCH_SIZE
from l4demons.search.tree import search_end_value
from core_support import BlindToMove, Float64Net, allows_mate_in_one

MATE_IN_ONE = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"  # Qxf7#
THREATENED = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"  # Black must stop Qxf7#
BACK_RANK = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"  # Ra8#



def run_puct(board, evaluator, visits):
    search = PuctSearch(board.copy(), PuctConfig())
    buffers = evaluator.new_buffers()
    while search.visits < visits and not search.done:
        run_step([LeafSource(search.collect())], evaluator, buffers)
    return search.result()


@pytest.mark.parametrize("fen,mate", [(MATE_IN_ONE, "h5f7"), (BACK_RANK, "a1a8")])
def test_gumbel_finds_mate_in_one_with_a_uniform_network(uniform_net, fen, mate):
    board = chess.Board(fen)
    n_legal = board.legal_moves.count()
    for seed in range(5):  # enough simulations to look at every root move
        search = GumbelSearch(board.copy(), GumbelConfig(simulations=2 * n_legal + 2, max_considered=n_legal),
                              np.random.default_rng(seed))
        run_searches([search], Evaluator(uniform_net))
        assert search.result().move.uci() == mate


@pytest.mark.parametrize("fen,mate", [(MATE_IN_ONE, "h5f7"), (BACK_RANK, "a1a8")])
def test_puct_finds_mate_in_one_with_a_uniform_network(uniform_net, fen, mate):
    assert run_puct(chess.Board(fen), Evaluator(uniform_net), 300).move.uci() == mate


@pytest.mark.parametrize("fen,mate", [(MATE_IN_ONE, "h5f7"), (BACK_RANK, "a1a8")])
def test_a_mate_at_once_is_played_however_little_the_policy_likes_it(fen, mate):
    board = chess.Board(fen)
    ev = Evaluator(BlindToMove(board, mate))
    for seed in range(3):
        search = GumbelSearch(board.copy(), GumbelConfig(simulations=32, max_considered=4), np.random.default_rng(seed))
        run_searches([search], ev)
        r = search.result()
        assert r.move.uci() == mate and r.nodes == 1  # the root alone: every visit a won end
        assert r.policy[r.moves.index(r.move)] > 0.5 and r.value > 0.9  # and the target learns the mate
    r = run_puct(board, ev, 300)
    assert (r.move.uci(), r.nodes, r.value) == (mate, 1, 1.0)


def test_a_position_with_a_mate_at_once_is_a_won_end_inside_the_search():
    board = chess.Board(BACK_RANK)
    assert search_end_value(board, list(board.legal_moves)) == 1.0
    board.push_uci("a1a7")  # no mate for Black here, and none on the board
    assert search_end_value(board, list(board.legal_moves)) is None
    board = chess.Board(THREATENED)  # Black to move, White threatens mate: Black has none
    assert search_end_value(board, list(board.legal_moves)) is None


def test_searches_avoid_allowing_mate_in_one(uniform_net):
    board = chess.Board(THREATENED)
    ev = Evaluator(uniform_net)
    assert not allows_mate_in_one(board, run_puct(board, ev, 1500).move)
    for seed in range(5):
        search = GumbelSearch(board.copy(), GumbelConfig(simulations=200, max_considered=40), np.random.default_rng(seed))
        run_searches([search], ev)
        assert not allows_mate_in_one(board, search.result().move)


def test_search_leaves_the_board_as_it_found_it(uniform_net):
    board = chess.Board(MATE_IN_ONE)
    fen = board.fen()
    search = GumbelSearch(board, GumbelConfig(simulations=32), np.random.default_rng(0))
    run_searches([search], Evaluator(uniform_net))
    assert board.fen() == fen and len(board.move_stack) == 0


def test_one_gumbel_search_batches_many_leaves_per_network_call(uniform_net):
    ev = Evaluator(uniform_net)
    search = GumbelSearch(chess.Board(), GumbelConfig(simulations=32, max_considered=16), np.random.default_rng(0))
    run_searches([search], ev)
    assert ev.evaluations == 32
    assert ev.calls <= 7  # root, then one call per sequential-halving round


def test_many_games_share_each_network_call(uniform_net):
    ev = Evaluator(uniform_net)
    searches = [GumbelSearch(chess.Board(), GumbelConfig(simulations=16), np.random.default_rng(i)) for i in range(10)]
    run_searches(searches, ev)
    assert ev.evaluations == 160
    assert ev.evaluations / ev.calls >= 10 * 16 / 7


def test_improved_policy_is_a_distribution_over_legal_moves(uniform_net):
    board = chess.Board()
    search = GumbelSearch(board, GumbelConfig(simulations=16), np.random.default_rng(0))
    run_searches([search], Evaluator(uniform_net))
    result = search.result()
    assert set(result.moves) == set(board.legal_moves)
    assert result.policy.shape == (20,)
    assert abs(result.policy.sum() - 1) < 1e-5 and result.policy.min() >= 0


def test_puct_batches_with_virtual_loss(uniform_net):
    search = PuctSearch(chess.Board(), PuctConfig(batch_size=8))
    ev = Evaluator(uniform_net)
    run_step([LeafSource(search.collect())], ev, ev.new_buffers())
    leaves = search.collect()
    assert len(leaves) == 8
    assert len({id(leaf.node) for leaf in leaves}) == 8


@pytest.mark.parametrize("m,n", [(16, 31), (16, 7), (4, 50), (1, 5), (20, 200)])
def test_halving_schedule_spends_exactly_the_budget(m, n):
    rounds = halving_schedule(m, n)
    assert sum(count for _, count in rounds) == n
    assert all(count <= m for _, count in rounds)


def test_play_defaults_take_the_devices_batch_size() -> None:
    assert PuctConfig.for_device("cpu").batch_size == CPU_BATCH_SIZE < PuctConfig().batch_size
    assert PuctConfig.for_device("cuda:1") == PuctConfig()
    assert PuctConfig.for_device("cpu", c_puct=1.25, batch_size=4) == PuctConfig(c_puct=1.25, batch_size=4)
    assert Bot(Float64Net("tiny", seed=1)).puct == PuctConfig.for_device("cpu")  # the bot's default
