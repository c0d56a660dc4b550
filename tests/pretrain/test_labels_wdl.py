"""Issue 20's targets: values from the teacher's W/D/L, MultiPV soft policies, random moves only early."""

import os

import chess
import chess.engine
import numpy as np
import pytest

from l4demons.encoding import legal_moves_and_indices, move_to_index
from l4demons.pretrain import labels

HAS_STOCKFISH = any(os.access(p, os.X_OK) for p in labels.STOCKFISH_PATHS)
needs_stockfish = pytest.mark.skipif(not HAS_STOCKFISH, reason="needs stockfish")
QUEEN_UP = "rnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"  # Black has no queen, White to move
QUEEN_DOWN = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNB1KBNR w KQkq - 0 1"  # White has no queen, White to move


class ScriptedTeacher:
    """A stand-in for python-chess's engine: its best move is the legal move first in UCI order,
    scored ``cp`` for the side to move, with ``wdl`` (White's view) where one is given."""

    def __init__(self, cp: int = 0, wdl: chess.engine.Wdl | None = None) -> None:
        self.cp, self.wdl, self.calls = cp, wdl, 0

    def analyse(self, board, limit, multipv=1):
        self.calls += 1
        moves = sorted(board.legal_moves, key=chess.Move.uci)[:multipv]
        infos = [{"pv": [m], "score": chess.engine.PovScore(chess.engine.Cp(self.cp - 10 * i), board.turn),
                  "multipv": i + 1} for i, m in enumerate(moves)]
        if self.wdl is not None:
            infos[0]["wdl"] = chess.engine.PovWdl(self.wdl, chess.WHITE)
        return infos

    def quit(self):
        pass


def sums(record) -> np.ndarray:
    return np.add.reduceat(record.policy_probs.astype(np.float32), record.policy_offsets[:-1])


# -- values --------------------------------------------------------------------------------------
def test_the_engines_own_wdl_is_the_value_from_the_side_to_moves_view():
    board = chess.Board()
    board.push_uci("e2e4")  # Black to move: White's (600, 300, 100) is Black's (100, 300, 600)
    _, wdl = labels.label(ScriptedTeacher(cp=0, wdl=chess.engine.Wdl(600, 300, 100)), board,
                          chess.engine.Limit(nodes=1), 1)
    assert tuple(wdl) == (100, 300, 600)
    assert labels.q_of(wdl) == pytest.approx(-0.5)


def test_without_an_engine_wdl_the_score_goes_through_stockfish_15_1s_model():
    board = chess.Board(QUEEN_UP)
    _, wdl = labels.label(ScriptedTeacher(cp=100), board, chess.engine.Limit(nodes=1), 1)
    assert wdl == labels.wdl_of(chess.engine.Cp(100), board.ply())
    # The normalisation: +100 cp is a 50% win at ply 64, the rest draws.
    w, d, l = labels.wdl_of(chess.engine.Cp(100), labels.MODEL_PLY)
    assert w == pytest.approx(500, abs=5) and l == 0 and w + d + l == 1000
    assert labels.value_of(chess.engine.Cp(100)) == pytest.approx(0.5, abs=0.01)
    assert labels.value_of(chess.engine.Cp(0)) == 0.0
    assert labels.value_of(chess.engine.Mate(2)) == 1.0 and labels.value_of(chess.engine.Mate(-4)) == -1.0


def test_the_learners_reading_of_q_keeps_the_model_wdl_within_one_percent():
    # The learner turns q into (max(q,0), 1-|q|, max(-q,0)): that is the W/D/L itself when min(W, L) is 0.
    for ply in (0, 30, 64, 120, 240):
        for cp in range(-400, 401, 5):
            wdl = labels.wdl_of(chess.engine.Cp(cp), ply)
            q = labels.q_of(wdl)
            read = np.array([max(q, 0.0), 1 - abs(q), max(-q, 0.0)])
            assert np.abs(read - np.array(tuple(wdl)) / 1000).max() <= 0.02, (ply, cp, wdl)


def test_results_drawn_from_q_have_q_as_their_mean_and_stay_certain_at_the_ends():
    rng = np.random.default_rng(0)
    drawn = np.array([labels.result_of(0.4, rng) for _ in range(4000)])
    assert set(drawn.tolist()) <= {0, 1} and drawn.mean() == pytest.approx(0.4, abs=0.03)
    assert {labels.result_of(q, rng) for q in (1.0,) * 50} == {1}
    assert {labels.result_of(q, rng) for q in (0.0,) * 50} == {0}
    assert {labels.result_of(q, rng) for q in (-1.0,) * 50} == {-1}


@needs_stockfish
def test_stockfish_values_a_queen_up_near_plus_one_and_the_start_near_zero():
    engine = labels.open_teacher(labels.find_teacher("stockfish"))
    limit = chess.engine.Limit(nodes=300)
    try:
        values = {}
        for name, fen in (("up", QUEEN_UP), ("down", QUEEN_DOWN), ("start", chess.STARTING_FEN)):
            board = chess.Board(fen)
            scored, wdl = labels.label(engine, board, limit, 1)
            values[name] = labels.q_of(wdl)
            # The engine's W/D/L is Stockfish 15.1's model of its own score (up to the printed centipawns' rounding).
            model = labels.wdl_of(scored[0][1], board.ply())
            assert max(abs(a - b) for a, b in zip(wdl, model)) <= 15, (name, wdl, model)
        board = chess.Board(QUEEN_UP)
        board.push_uci("g1f3")  # Black to move, a queen down: its own view
        values["down, Black to move"] = labels.q_of(labels.label(engine, board, limit, 1)[1])
    finally:
        engine.quit()
    assert values["up"] > 0.95 and values["down"] < -0.95 and values["down, Black to move"] < -0.95
    assert abs(values["start"]) < 0.2


# -- policy ----------------------------------------------------------------------------------------
def test_a_scripted_multipv_gives_a_softmax_over_legal_moves_only():
    board = chess.Board()
    illegal = chess.Move.from_uci("e2e5")
    scored = [(chess.Move.from_uci("e2e4"), chess.engine.Cp(30)), (illegal, chess.engine.Cp(20)),
              (chess.Move.from_uci("d2d4"), chess.engine.Cp(-20))]
    indices, probs = labels.policy_target(board, scored)
    _, legal = legal_moves_and_indices(board)
    assert indices.tolist() == list(legal)
    p = probs.astype(np.float32)
    assert p.sum() == pytest.approx(1.0, abs=2e-3) and np.count_nonzero(p) == 2
    e4, d4 = (legal.index(move_to_index(chess.Move.from_uci(m), chess.WHITE)) for m in ("e2e4", "d2d4"))
    assert p[e4] / p[d4] == pytest.approx(np.exp(50 / labels.POLICY_TEMPERATURE_CP), rel=0.01)


@needs_stockfish
def test_stockfish_multipv_targets_sum_to_one_over_legal_moves_and_rank_its_best_first():
    engine = labels.open_teacher(labels.find_teacher("stockfish"))
    try:
        for fen in (chess.STARTING_FEN, "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"):
            board = chess.Board(fen)
            scored, _ = labels.label(engine, board, chess.engine.Limit(nodes=400), 4)
            indices, probs = labels.policy_target(board, scored)
            _, legal = legal_moves_and_indices(board)
            p = probs.astype(np.float32)
            assert indices.tolist() == list(legal) and len(scored) == 4
            assert p.sum() == pytest.approx(1.0, abs=2e-3) and 2 <= np.count_nonzero(p) <= 4
            assert legal[int(np.argmax(p))] == move_to_index(scored[0][0], board.turn)
            single = labels.policy_target(board, scored[:1])[1].astype(np.float32)
            assert np.count_nonzero(single) == 1 and single.sum() == 1.0
    finally:
        engine.quit()


# -- the teacher's games ---------------------------------------------------------------------------
def _games(monkeypatch, **kwargs):
    teacher = ScriptedTeacher(cp=30)
    monkeypatch.setattr(labels, "open_teacher", lambda path: teacher)
    opening = ["e2e4", "e7e5"]
    args = dict(random_share=1.0, max_plies=30, deadline=float("inf"), max_positions=200, seed=3)
    args.update(kwargs)
    return opening, labels.teacher_games("scripted", [opening], chess.engine.Limit(nodes=1), args.pop("multipv", 1),
                                         args.pop("random_share"), args.pop("max_plies"), args.pop("deadline"),
                                         args.pop("max_positions"), args.pop("seed"), **args)


def _random_plies_of(opening, record) -> list[bool]:
    """Per ply after the book line: whether the move played was not the scripted teacher's."""
    board = chess.Board()
    for uci in opening:
        board.push_uci(uci)
    assert record.moves[:len(opening)] == opening and len(record.moves) == len(opening) + len(record)
    out = []
    for uci in record.moves[len(opening):]:
        out.append(uci != min(m.uci() for m in board.legal_moves))
        board.push_uci(uci)
    return out


def test_random_moves_come_only_in_the_first_plies_after_the_book(monkeypatch):
    opening, games = _games(monkeypatch, random_plies=6)
    assert sum(map(len, games)) == 200 and len(games) >= 5
    for g in games:
        strayed = _random_plies_of(opening, g)
        assert not any(strayed[6:])  # never after the early-ply limit
        if len(strayed) >= 6:
            assert sum(strayed[:6]) >= 4  # at a share of 1, nearly every early move is random
        assert g.full_search.all() and np.allclose(sums(g), 1.0, atol=2e-3)


def test_random_moves_keep_to_their_share_and_zero_plies_means_none(monkeypatch):
    opening, games = _games(monkeypatch, random_share=0.25, max_positions=2000, random_plies=20, seed=5)
    early = np.array([s for g in games for s in _random_plies_of(opening, g)[:20]])
    assert 0.15 < early.mean() < 0.35  # the share, less the random moves that happen to be the teacher's
    assert not any(s for g in games for s in _random_plies_of(opening, g)[20:])
    opening, games = _games(monkeypatch, random_plies=0)
    assert not any(any(_random_plies_of(opening, g)) for g in games)
    with pytest.raises(ValueError, match="random_plies"):
        _games(monkeypatch, random_plies=-1)


def test_positional_call_of_the_warm_start_still_works_with_the_default_limit(monkeypatch):
    # pretrain/run.py calls teacher_games positionally, without random_plies.
    opening, games = _games(monkeypatch, max_positions=120, max_plies=60)
    strayed = [s for g in games for s in _random_plies_of(opening, g)[labels.RANDOM_PLIES:]]
    assert strayed and not any(strayed)


def test_teacher_records_carry_the_value_as_w_minus_l_and_results_drawn_from_it(monkeypatch):
    teacher = ScriptedTeacher(cp=0, wdl=chess.engine.Wdl(700, 300, 0))  # White's view, every position
    monkeypatch.setattr(labels, "open_teacher", lambda path: teacher)
    games = labels.teacher_games("scripted", [[]], chess.engine.Limit(nodes=1), 1, 0.0, 40, float("inf"), 400, 7)
    values = np.concatenate([g.values for g in games]).astype(np.float32)
    results = np.concatenate([g.results for g in games])
    white = np.concatenate([np.arange(len(g)) % 2 == 0 for g in games])  # the games start at the initial position
    assert np.allclose(values[white], 0.7, atol=1e-3) and np.allclose(values[~white], -0.7, atol=1e-3)
    assert set(results[white].tolist()) <= {0, 1} and set(results[~white].tolist()) <= {0, -1}
    assert results[white].mean() == pytest.approx(0.7, abs=0.1)
