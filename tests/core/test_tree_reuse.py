"""Tree reuse: a move's search starts from the subtree the last search of the game grew below it.

The reference search (float64 network, as in test_core_search) builds the
same tree as the core, so the reused subtree can be checked node for node
against the reference's own subtree.
"""

from __future__ import annotations

import chess
import numpy as np
import pytest

from l4demons.bot import Bot
from l4demons.search import Evaluator, PuctConfig
from l4demons.search.compiled import CompiledPuct
from l4demons.search.play import ReferencePuct

from core_support import Float64Net, require_core, run_play


def game(*ucis: str) -> chess.Board:
    board = chess.Board()
    for uci in ucis:
        board.push_uci(uci)
    return board


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    require_core()
    return Evaluator(Float64Net("tiny", seed=11))


def test_the_reused_tree_is_the_subtree_two_plies_down(evaluator: Evaluator) -> None:
    board = game("e2e4", "e7e5")
    cfg = PuctConfig(batch_size=8)
    reference = run_play(ReferencePuct(board, cfg), evaluator, 600)
    old = run_play(CompiledPuct(board, cfg), evaluator, 600)
    path = old.principal_variation(2)
    assert path == reference.principal_variation(2) and len(path) == 2
    node = reference.search.root
    for move in path:
        node = node.children[node.moves.index(move)]
    below = board.copy()
    for move in path:
        below.push(move)

    new = CompiledPuct(below, cfg)
    assert new.reuse(old, path)
    assert new.started and new.nodes == 0
    assert new.visits == int(node.visits.sum()) > 0
    result = new.result()
    assert result.moves == node.moves
    np.testing.assert_allclose(result.policy, node.visits / node.visits.sum(), rtol=0, atol=1e-9)
    assert result.value == pytest.approx(node.q()[node.moves.index(result.move)], abs=1e-9)

    inherited = new.visits
    run_play(new, evaluator, inherited + 100)  # and the search goes on from there
    assert new.visits >= inherited + 100
    assert 0 < new.nodes <= 100 + cfg.batch_size


def test_no_reuse_where_a_fresh_search_must_run(evaluator: Evaluator) -> None:
    board = game("e2e4", "e7e5", "f1c4", "b8c6", "d1h5")  # black to move; after ...Nf6?? Qxf7 mates
    old = run_play(CompiledPuct(board), evaluator, 400)
    blunder = chess.Move.from_uci("g8f6")
    assert old.result().policy[old.result().moves.index(blunder)] > 0  # searched, so its node is in the tree
    after = board.copy()
    after.push(blunder)
    assert not CompiledPuct(after).reuse(old, [blunder])  # a mate at once: the fresh search finds it at its root

    quiet = chess.Move.from_uci("g7g6")  # blocks the queen: no mate at once
    after = board.copy()
    after.push(quiet)
    assert not CompiledPuct(after, root_moves=[chess.Move.from_uci("h5f7")]).reuse(old, [quiet])
    assert not CompiledPuct(after).reuse(ReferencePuct(board), [quiet])  # the reference keeps no tree
    assert CompiledPuct(after).reuse(old, [quiet])  # the control: a fresh unrestricted search takes it

    short = run_play(CompiledPuct(board, PuctConfig(batch_size=1)), evaluator, 4)
    unsearched = next(m for m, p in zip(short.result().moves, short.result().policy) if p == 0)
    after = board.copy()
    after.push(unsearched)
    assert not CompiledPuct(after).reuse(short, [unsearched])


def test_the_bot_continues_its_tree_on_the_next_move_of_the_game() -> None:
    require_core()
    board = game("e2e4")
    fresh_bot, bot = (Bot(Float64Net("tiny", seed=5), reuse_tree=reuse) for reuse in (False, True))
    move, probs = bot.choose_move(board, nodes=400)
    assert fresh_bot.choose_move(board, nodes=400) == (move, probs)  # the first move: nothing to reuse
    board.push(move)
    inherited = round(probs[move.uci()] * 400) - 1  # the move's visits, less the one that evaluated it
    assert inherited > bot.puct.batch_size

    def searched(bot: Bot, board: chess.Board) -> int:
        infos = []
        bot.choose_move(board, nodes=inherited, on_info=infos.append)
        return infos[-1].nodes

    assert searched(bot, board) <= bot.puct.batch_size  # the budget was met by the tree it kept
    assert searched(fresh_bot, board) >= inherited - bot.puct.batch_size
    bare = chess.Board(board.fen())  # the same position without its moves: not known as this game
    assert searched(bot, bare) >= inherited - bot.puct.batch_size
