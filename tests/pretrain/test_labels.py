"""The teacher's judgement as targets: Stockfish 15.1's win-rate model and the policy softmax."""

import chess
import chess.engine
import numpy as np
import pytest

from l4demons.encoding import legal_moves_and_indices, move_to_index
from l4demons.pretrain import labels


def test_logistic_is_monotone_symmetric_and_even_at_zero():
    cps = np.linspace(-2000, 2000, 81)
    scores = np.array([labels.expected_score(c) for c in cps])
    assert np.all(np.diff(scores) >= 0) and np.all(np.diff(scores[35:46]) > 0)  # saturates past about +-3 pawns
    assert np.allclose(scores + scores[::-1], 1.0)
    assert labels.expected_score(0) == 0.5
    # Stockfish 15.1's normalisation: +100 cp is a 50% win (the rest draws) at ply 64, a 75% expected score.
    assert labels.expected_score(100) == pytest.approx(0.75, abs=0.01)


def test_mates_are_certain_and_values_bounded():
    assert labels.value_of(chess.engine.Mate(3)) == 1.0
    assert labels.value_of(chess.engine.Mate(-1)) == -1.0
    assert labels.value_of(chess.engine.Cp(-900)) == pytest.approx(-1.0, abs=1e-3)
    assert -0.5 < labels.value_of(chess.engine.Cp(-50)) < -0.05
    assert [labels.result_of(q) for q in (0.9, 0.1, -0.5)] == [1, 0, -1]


def test_multipv_softmax_sums_to_one_over_legal_moves_and_prefers_the_best():
    board = chess.Board()
    scored = [(chess.Move.from_uci("e2e4"), chess.engine.Cp(40)), (chess.Move.from_uci("d2d4"), chess.engine.Cp(30)),
              (chess.Move.from_uci("g1f3"), chess.engine.Cp(-60))]
    indices, probs = labels.policy_target(board, scored)
    _, legal = legal_moves_and_indices(board)
    assert sorted(indices.tolist()) == sorted(legal)
    assert probs.astype(np.float32).sum() == pytest.approx(1.0, abs=2e-3)
    p = dict(zip(indices.tolist(), probs.astype(np.float32)))
    e4, d4, nf3 = (move_to_index(chess.Move.from_uci(m), chess.WHITE) for m in ("e2e4", "d2d4", "g1f3"))
    assert p[e4] > p[d4] > p[nf3] > 0
    assert sum(v for k, v in p.items() if k not in (e4, d4, nf3)) == 0
    one_hot = labels.policy_target(board, scored[:1])[1].astype(np.float32)
    assert sorted(one_hot)[-1] == 1.0 and one_hot.sum() == 1.0


def test_a_missing_teacher_is_one_clear_error(tmp_path):
    with pytest.raises(labels.TeacherError, match="not an executable"):
        labels.find_teacher(str(tmp_path / "no-such-engine"))


@pytest.mark.skipif(not any(__import__("os").access(p, 1) for p in labels.STOCKFISH_PATHS), reason="needs stockfish")
def test_teacher_games_label_every_position_they_play():
    path = labels.find_teacher("stockfish")
    games = labels.teacher_games(path, [["e2e4", "e7e5"]], chess.engine.Limit(nodes=50), 1, 0.5, 12,
                                 deadline=float("inf"), max_positions=20, seed=0)
    assert sum(len(g) for g in games) == 20
    for g in games:
        assert g.full_search.all() and np.all(np.abs(g.values.astype(np.float32)) <= 1)
        sums = np.add.reduceat(g.policy_probs.astype(np.float32), g.policy_offsets[:-1])
        assert np.allclose(sums, 1.0, atol=2e-3)
