"""Self-play in the compiled core (:mod:`l4demons.core`): it fills one contiguous batch, Python runs the network."""

from __future__ import annotations

from typing import Callable

import numpy as np

from l4demons import core
from l4demons.encoding import POSITION_DTYPE
from l4demons.search import Evaluator, GumbelConfig
from l4demons.search.batch import BatchBuffers, run_step
from l4demons.selfplay.config import SelfPlayConfig, game_starts
from l4demons.selfplay.record import GameRecord, rescore


CORE_FIELDS = (
    "simulations", "fast_simulations", "full_search_prob", "max_considered", "max_plies", "adjudicate_material",
    "material_win", "material_win_plies", "resign_threshold", "resign_moves", "resign_playthrough", "draw_threshold",
    "draw_min_ply", "draw_plies", "concurrent_games", "sample_plies", "play_on_simulations",
    "play_on_noise", "play_on_plies",
)
"""The SelfPlayConfig fields the core implements (a test checks that with SHARED_FIELDS this is all of them)."""
SHARED_FIELDS = ("endgame_share", "odds_share", "rescore_known_wins")
"""The SelfPlayConfig fields applied in Python for both implementations: which games start where
(:func:`~l4demons.selfplay.config.game_starts`) and the results of finished games
(:func:`~l4demons.selfplay.record.rescore`)."""



class CompiledGames:
    """The core's scheduler of many games as a batch source."""

    def __init__(self, cfg: SelfPlayConfig, n_games: int, seed: int) -> None:
        self.cfg = cfg
        c = core.module()
        params = c.SelfPlayParams()
        for name in CORE_FIELDS:
            setattr(params, name, getattr(cfg, name))
        g = GumbelConfig()
        params.gumbel = c.GumbelParams(cfg.max_considered, g.c_visit, g.c_scale, g.gumbel_scale)
        self.games = c.SelfPlay(params, n_games, seed)
        for index, (board, ending) in game_starts(n_games, cfg, seed).items():
            self.games.set_start(index, core.position(board), ending)

    def collect(self, buffers: BatchBuffers) -> None:
        buffers.reserve(self.games.max_rows, self.games.max_flats)
        rows, flats = self.games.collect(buffers.planes, buffers.flat)
        buffers.rows, buffers.flats = rows, flats

    def deliver(self, logits: np.ndarray, values: np.ndarray) -> None:
        self.games.deliver(logits, values)

    def take_finished(self) -> list[GameRecord]:
        return [rescore(_record(*raw), self.cfg) for raw in self.games.take_finished()]


def _record(index: int, positions: np.ndarray, offsets: np.ndarray, indices: np.ndarray, probs: np.ndarray,
            full: np.ndarray, values: np.ndarray, results: np.ndarray, moves: list[str], termination: str,
            false_resign: bool, would_resign: bool, played_on: int) -> GameRecord:
    return GameRecord(
        positions=positions.view(POSITION_DTYPE).reshape(-1),
        policy_offsets=offsets,
        policy_indices=indices,
        policy_probs=probs.astype(np.float16),  # float64 -> float32 in the core, as the reference rounds
        full_search=full,
        values=values.astype(np.float16),
        results=results,
        moves=moves,
        termination=termination,
        false_resign=false_resign,
        would_resign=would_resign,
        played_on=played_on,
    )


def play_compiled(evaluator: Evaluator, cfg: SelfPlayConfig, n_games: int, seed: int,
                   on_game: Callable[[GameRecord], None] | None, should_stop: Callable[[], bool]) -> list[GameRecord]:
    source = CompiledGames(cfg, n_games, seed)
    buffers = evaluator.new_buffers(source.games.max_rows)
    finished: list[GameRecord] = []
    while not source.games.finished and not should_stop():
        run_step([source], evaluator, buffers)
        for rec in source.take_finished():
            finished.append(rec)
            if on_game is not None:
                on_game(rec)
    return finished
