"""Labels for supervised warm starts: a teacher engine's judgement as training targets.

A labelled position becomes exactly what self-play would have written (a
:class:`~l4demons.selfplay.GameRecord` row), so the replay window, the
learner and the hub take warm-start data unchanged:

- **value**: the teacher's score through the logistic of
  :func:`expected_score` (centipawns -> expected score, lichess's
  accuracy model: ``1 / (1 + exp(-0.00368208 * cp))``), stored as the
  search value ``q = 2 * score - 1`` in [-1, 1]; a mate is +-1. The learner
  turns ``q`` into win/draw/loss as ``(max(q,0), 1-|q|, max(-q,0))``: an
  even position is a likely draw, a won one a likely win. The game-result
  column holds ``q`` rounded to a win, draw or loss at +-1/3, for when
  self-play later mixes results in.
- **policy**: the teacher's best move (``multipv=1``), or a softmax over its
  ``multipv`` best moves' scores at :data:`POLICY_TEMPERATURE_CP`.

Positions come from :func:`teacher_games`: book openings, then the teacher's
own moves with a share of uniformly random ones mixed in, so positions look
like games the bot will play (not random noise) yet stray from book lines
and include the mistakes it must punish. Each game is labelled as it is
played, one engine call a ply; one worker process per core
(:mod:`l4demons.pretrain.run`).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import chess
import chess.engine
import numpy as np

from l4demons.encoding import POSITION_DTYPE, encode_position, legal_moves_and_indices
from l4demons.selfplay import GameRecord

CP_SLOPE = 0.00368208
"""Logistic slope (per centipawn) of :func:`expected_score`: +100 cp is a 59% expected score, +300 cp 75%."""
POLICY_TEMPERATURE_CP = 50.0
"""MultiPV softmax temperature: a move 50 cp worse than the best gets 1/e of its weight."""
DRAW_BAND = 1.0 / 3.0
"""|q| below this is recorded as a draw in the game-result column."""
STOCKFISH_PATHS = ("/usr/games/stockfish", "/usr/bin/stockfish")


class TeacherError(RuntimeError):
    """The teacher engine is missing, refuses to start or crashed."""


def expected_score(cp: float) -> float:
    """Expected score in [0, 1] of a side ``cp`` centipawns ahead."""
    return 1.0 / (1.0 + math.exp(-CP_SLOPE * max(-4000.0, min(4000.0, cp))))


def value_of(score: chess.engine.Score) -> float:
    """``q`` in [-1, 1] for a side-to-move score (mates are +-1)."""
    mate = score.mate()
    if mate is not None:
        return 1.0 if mate > 0 else -1.0
    return 2.0 * expected_score(score.score()) - 1.0


def result_of(q: float) -> int:
    return 1 if q > DRAW_BAND else -1 if q < -DRAW_BAND else 0


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


def open_teacher(path: str) -> chess.engine.SimpleEngine:
    try:
        # A session of its own: the group's Ctrl-C or SIGTERM must not kill it; its labelling process ends it.
        engine = chess.engine.SimpleEngine.popen_uci(path, timeout=30, setpgrp=True)
        options = {"Threads": 1, "Hash": 16}
        engine.configure({k: v for k, v in options.items() if k in engine.options})
        return engine
    except (OSError, chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError) as e:
        raise TeacherError(f"teacher engine {path} did not start as a UCI engine: {e}") from None


def label(engine: chess.engine.SimpleEngine, board: chess.Board, limit: chess.engine.Limit,
          multipv: int) -> tuple[list[tuple[chess.Move, chess.engine.Score]], float]:
    """The teacher's best moves with side-to-move scores, and the value ``q`` of the position."""
    try:
        infos = engine.analyse(board, limit, multipv=multipv)
    except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError) as e:
        raise TeacherError(f"the teacher engine failed: {e or type(e).__name__}") from None
    scored = [(i["pv"][0], i["score"].pov(board.turn)) for i in infos if i.get("pv") and "score" in i]
    if not scored:
        raise TeacherError("the teacher engine returned no move for a legal position")
    return scored, value_of(scored[0][1])


def teacher_games(path: str, openings: list[list[str]], limit: chess.engine.Limit, multipv: int,
                  random_share: float, max_plies: int, deadline: float, max_positions: int,
                  seed: int, should_stop: Callable[[], bool] = lambda: False) -> list[GameRecord]:
    """Play and label games until ``deadline`` (``time.time()``), ``max_positions`` or ``should_stop()``;
    one worker's share."""
    rng = np.random.default_rng(seed)
    engine = open_teacher(path)
    games: list[GameRecord] = []
    n = 0

    def more() -> bool:
        return time.time() < deadline and not should_stop()

    try:
        while more() and n < max_positions:
            board = chess.Board()
            for uci in openings[int(rng.integers(len(openings)))]:
                board.push_uci(uci)
            rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
            while (not board.is_game_over(claim_draw=True) and len(rows) < max_plies
                   and more() and n + len(rows) < max_positions):
                scored, q = label(engine, board, limit, multipv)
                indices, probs = policy_target(board, scored)
                rows.append((encode_position(board), indices, probs, q))
                moves = list(board.legal_moves)
                board.push(moves[int(rng.integers(len(moves)))] if rng.random() < random_share else scored[0][0])
            if rows:
                games.append(record_from_rows(rows))
                n += len(rows)
    finally:
        try:
            engine.quit()
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError):
            pass
    return games


def record_from_rows(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]) -> GameRecord:
    """Labelled positions as one GameRecord (every position a full-search policy target)."""
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
        results=np.array([result_of(q) for q in values], np.int8),
    )
