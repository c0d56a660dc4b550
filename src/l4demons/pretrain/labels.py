"""Labels for supervised warm starts: a teacher engine's judgement as training targets.

A labelled position becomes exactly what self-play would have written (a
:class:`~l4demons.selfplay.GameRecord` row), so the replay window, the
learner and the hub take warm-start data unchanged:

- **value**: the teacher's own win/draw/loss estimate (``UCI_ShowWDL``),
  or, from an engine that gives none, the score through Stockfish 15.1's
  win-rate model (:data:`WDL_MODEL`: +100 cp is a 50% chance to win at
  ply 64, a 0.4% chance to lose; 0 cp is a 99% draw). Stored as the
  search value ``q = W - L`` in [-1, 1] (``2 * expected score - 1``); a
  mate is +-1. The learner turns ``q`` back into win/draw/loss as
  ``(max(q,0), 1-|q|, max(-q,0))``, which is the teacher's W/D/L itself
  whenever one of W and L is 0 (in Stockfish 15.1's model the smaller of
  the two is below 1% at any score), so the record format carries the draw
  mass unchanged. The game-result column holds a result drawn from those
  same probabilities (seeded), so a learner that mixes results in reads the
  teacher's W/D/L in expectation rather than a rounded one.
- **policy**: the teacher's best move (``multipv=1``), or a softmax over its
  ``multipv`` best moves' scores at :data:`POLICY_TEMPERATURE_CP`, zero on
  every other legal move.

Positions come from :func:`teacher_games`: book openings, then the teacher's
own moves, with a share of uniformly random ones mixed in during the first
``random_plies`` plies only, so positions look like games the bot will play
(not random noise) yet stray from book lines and include early mistakes it
must punish, while middlegames and endgames stay the teacher's own. Each
game is labelled as it is played, one engine call a ply; one worker process
per core (:mod:`l4demons.pretrain.run`). Positions from elsewhere (the hub's
own self-play, :mod:`l4demons.pretrain.hub_positions`) are labelled by the
same :func:`label_row`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import chess
import chess.engine
import numpy as np

from l4demons.encoding import POSITION_DTYPE, encode_position, legal_moves_and_indices
from l4demons.selfplay import GameRecord

WDL_MODEL = "sf15.1"
"""python-chess's copy of Stockfish 15.1's win-rate model (``uci.cpp``'s ``win_rate_model``,
``NormalizeToPawnValue = 361``), used where the teacher gives no W/D/L: a logistic in
the score whose offset and width depend on the ply; +100 cp is a 50% win at ply 64.
It reproduces Debian's Stockfish 15.1's own ``wdl`` output exactly (up to the
rounding of the printed centipawns)."""
MODEL_PLY = 64
"""The ply at which Stockfish 15.1 anchors its normalisation (+100 cp = 50% win)."""
POLICY_TEMPERATURE_CP = 50.0
"""MultiPV softmax temperature: a move 50 cp worse than the best gets 1/e of its weight."""
DRAW_BAND = 1.0 / 3.0
"""|q| below this is recorded as a draw in the game-result column when no result is drawn at random."""
RANDOM_PLIES = 20
"""Plies after the book opening in which the teacher's games may play a random move."""
STOCKFISH_PATHS = ("/usr/games/stockfish", "/usr/bin/stockfish")


class TeacherError(RuntimeError):
    """The teacher engine is missing, refuses to start or crashed."""


def wdl_of(score: chess.engine.Score, ply: int = MODEL_PLY) -> chess.engine.Wdl:
    """Win/draw/loss per mille of the side to move for its ``score`` at game ply ``ply`` (:data:`WDL_MODEL`)."""
    return score.wdl(model=WDL_MODEL, ply=ply)


def expected_score(cp: float, ply: int = MODEL_PLY) -> float:
    """Expected score in [0, 1] of a side ``cp`` centipawns ahead (a win 1, a draw 1/2)."""
    return wdl_of(chess.engine.Cp(round(cp)), ply).expectation()


def value_of(score: chess.engine.Score, ply: int = MODEL_PLY) -> float:
    """``q = W - L`` in [-1, 1] for a side-to-move score at game ply ``ply`` (mates are +-1)."""
    return q_of(wdl_of(score, ply))


def q_of(wdl: chess.engine.Wdl) -> float:
    """``W - L`` as a share of all outcomes: ``2 * wdl.expectation() - 1``."""
    return (wdl.wins - wdl.losses) / wdl.total()


def result_of(q: float, rng: np.random.Generator | None = None) -> int:
    """The game-result column's entry for search value ``q``: drawn at random (a win with
    probability ``max(q, 0)``, a loss with ``max(-q, 0)``, else a draw) when ``rng`` is
    given, so its mean is ``q``; else ``q`` rounded at +-:data:`DRAW_BAND`."""
    if rng is None:
        return 1 if q > DRAW_BAND else -1 if q < -DRAW_BAND else 0
    return (1 if q > 0 else -1) if rng.random() < abs(q) else 0


def policy_target(board: chess.Board, scored: list[tuple[chess.Move, chess.engine.Score]]) -> tuple[np.ndarray, np.ndarray]:
    """Sparse target over all legal moves: the softmax of the scored moves (one move: one-hot)."""
    moves, indices = legal_moves_and_indices(board)
    probs = np.zeros(len(moves), np.float32)
    cps = np.array([s.score(mate_score=100_000) for _, s in scored], dtype=np.float64)
    weights = np.exp((cps - cps.max()) / POLICY_TEMPERATURE_CP)
    where = {m: i for i, m in enumerate(moves)}
    for (move, _), w in zip(scored, weights):
        if move in where:
            probs[where[move]] += w
    if probs.sum() <= 0:  # the engine named no legal move (should not happen): uniform
        probs[:] = 1.0
    return np.asarray(indices, np.uint16), (probs / probs.sum()).astype(np.float16)


def find_teacher(path: str | None) -> str:
    """The engine to run: ``path``, else ``$L4D_STOCKFISH``, else Debian's Stockfish.

    :raises TeacherError: nothing runnable there.
    """
    path = path or os.environ.get("L4D_STOCKFISH")
    if path in (None, "", "stockfish"):
        found = next((p for p in STOCKFISH_PATHS if os.access(p, os.X_OK)), None) or shutil.which("stockfish")
        if found is None:
            raise TeacherError("no teacher engine found: install Stockfish (apt-get install stockfish) "
                               "or give --teacher PATH or $L4D_STOCKFISH")
        return found
    resolved = shutil.which(path) or (path if Path(path).is_file() else None)
    if resolved is None or not os.access(resolved, os.X_OK):
        raise TeacherError(f"teacher engine {path} is not an executable file")
    return resolved


Row = tuple[np.ndarray, np.ndarray, np.ndarray, float]
"""One labelled position: its :data:`~l4demons.encoding.POSITION_DTYPE` record, policy indices, policy
probabilities and ``q`` (:func:`record_from_rows` makes a game of them)."""


def open_teacher(path: str) -> chess.engine.SimpleEngine:
    try:
        # A session of its own: the group's Ctrl-C or SIGTERM must not kill it; its labelling process ends it.
        engine = chess.engine.SimpleEngine.popen_uci(path, timeout=30, setpgrp=True)
        options = {"Threads": 1, "Hash": 16, "UCI_ShowWDL": True}
        engine.configure({k: v for k, v in options.items() if k in engine.options})
        return engine
    except (OSError, chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError) as e:
        raise TeacherError(f"teacher engine {path} did not start as a UCI engine: {e}") from None


def label(engine: chess.engine.SimpleEngine, board: chess.Board, limit: chess.engine.Limit,
          multipv: int) -> tuple[list[tuple[chess.Move, chess.engine.Score]], chess.engine.Wdl]:
    """The teacher's best moves with side-to-move scores, and the side to move's win/draw/loss:
    the engine's own (``UCI_ShowWDL``) where it gives one, else :func:`wdl_of` its best score.

    :raises TeacherError: the engine failed or named no move.
    """
    try:
        infos = engine.analyse(board, limit, multipv=multipv)
    except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError) as e:
        raise TeacherError(f"the teacher engine failed: {e or type(e).__name__}") from None
    scored = [(i["pv"][0], i["score"].pov(board.turn)) for i in infos if i.get("pv") and "score" in i]
    if not scored:
        raise TeacherError("the teacher engine returned no move for a legal position")
    wdl = infos[0].get("wdl")
    if wdl is not None and wdl.pov(board.turn).total() > 0:
        return scored, wdl.pov(board.turn)
    return scored, wdl_of(scored[0][1], board.ply())


def label_row(engine: chess.engine.SimpleEngine, board: chess.Board, limit: chess.engine.Limit,
              multipv: int) -> tuple[Row, chess.Move]:
    """``board`` labelled as a training row (:func:`label`, :func:`policy_target`, :func:`q_of`), and the
    teacher's best move. The one labelling of a position, for the teacher's own games and any other.

    :raises TeacherError: the engine failed or named no move.
    """
    scored, wdl = label(engine, board, limit, multipv)
    indices, probs = policy_target(board, scored)
    return (encode_position(board), indices, probs, q_of(wdl)), scored[0][0]


@contextlib.contextmanager
def teacher_session(path: str) -> Iterator[chess.engine.SimpleEngine]:
    """The teacher at ``path`` (:func:`open_teacher`), quit when the block ends, however it ends.

    :raises TeacherError: the teacher did not start.
    """
    engine = open_teacher(path)
    try:
        yield engine
    finally:
        try:
            engine.quit()
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError):
            pass


def teacher_games(path: str, openings: list[list[str]], limit: chess.engine.Limit, multipv: int,
                  random_share: float, max_plies: int, deadline: float, max_positions: int,
                  seed: int, should_stop: Callable[[], bool] = lambda: False, *,
                  random_plies: int = RANDOM_PLIES) -> list[GameRecord]:
    """Play and label games until ``deadline`` (``time.time()``), ``max_positions`` or ``should_stop()``;
    one worker's share.

    Each game starts from a random line of ``openings``; in its first ``random_plies`` plies after
    it, a move is uniformly random with probability ``random_share``, every later move is the
    teacher's best. Every position is labelled (:func:`label_row`), the random ones' too.

    :raises TeacherError: the teacher did not start or failed.
    :raises ValueError: ``random_plies`` is negative.
    """
    if random_plies < 0:
        raise ValueError(f"random_plies must be 0 or more, got {random_plies}")
    rng = np.random.default_rng(seed)
    games: list[GameRecord] = []
    n = 0

    def more() -> bool:
        return time.time() < deadline and not should_stop()

    with teacher_session(path) as engine:
        while more() and n < max_positions:
            board = chess.Board()
            for uci in openings[int(rng.integers(len(openings)))]:
                board.push_uci(uci)
            rows: list[Row] = []
            while (not board.is_game_over(claim_draw=True) and len(rows) < max_plies
                   and more() and n + len(rows) < max_positions):
                row, best = label_row(engine, board, limit, multipv)
                early = len(rows) < random_plies  # plies played since the book line, before this one
                rows.append(row)
                if early and rng.random() < random_share:
                    moves = list(board.generate_legal_moves())
                    board.push(moves[int(rng.integers(len(moves)))])
                else:
                    board.push(best)
            if rows:
                record = record_from_rows(rows, rng)
                record.moves = [m.uci() for m in board.move_stack]  # the book line, then one move a row
                games.append(record)
                n += len(rows)
    return games


def record_from_rows(rows: list[Row], rng: np.random.Generator | None = None) -> GameRecord:
    """Labelled positions ``(position, policy indices, policy probabilities, q)`` as one GameRecord
    (every position a full-search policy target); results from ``q`` by :func:`result_of`."""
    lengths = [len(r[1]) for r in rows]
    values = np.array([r[3] for r in rows], np.float32)
    positions = np.zeros(len(rows), POSITION_DTYPE)
    for i, r in enumerate(rows):
        positions[i] = r[0]
    return GameRecord(
        positions=positions,
        policy_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        policy_indices=np.concatenate([r[1] for r in rows]).astype(np.uint16),
        policy_probs=np.concatenate([r[2] for r in rows]).astype(np.float16),
        full_search=np.ones(len(rows), bool),
        values=values.astype(np.float16),
        results=np.array([result_of(float(q), rng) for q in values], np.int8),
    )
