"""The Python reference of self-play: the compiled core is tested against it and falls back to it.

:class:`Game` is one game in flight (board, records, the adjudication
streaks); :func:`play_reference` runs many of them, each move a
:class:`~l4demons.search.GumbelSearch`, their leaves batched into one
network call per step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import chess
import numpy as np

from l4demons.encoding import POSITION_DTYPE, encode_position, material_balance
from l4demons.search import Evaluator, GumbelConfig, GumbelSearch, SearchResult
from l4demons.search.batch import LeafSource, run_step
from l4demons.search.noise import NoiseStream, game_seed
from l4demons.selfplay.config import SelfPlayConfig, game_starts
from l4demons.selfplay.record import GameRecord, game_over, rescore


class Game:
    """A game in flight: the board, what was recorded so far, adjudication state."""

    def __init__(self, cfg: SelfPlayConfig, rng: np.random.Generator | NoiseStream,
                 start: chess.Board | None = None, ending: bool = True) -> None:
        self.cfg = cfg
        self.rng = rng
        """This game's random numbers (resignation playthrough, playout cap, Gumbels)."""
        self.board = start.copy(stack=False) if start is not None else chess.Board()
        self.from_ending = start is not None and ending
        """Started from an ending (l4demons.endgames): played to a rule of chess, never resigned or scored by material.
        Any other start (l4demons.odds) plays by the rules of a game from the opening."""
        self.positions: list[np.ndarray] = []
        self.policies: list[tuple[np.ndarray, np.ndarray]] = []
        self.full: list[bool] = []
        self.values: list[float] = []
        self.turns: list[bool] = []
        self.may_resign = rng.random() >= cfg.resign_playthrough and not self.from_ending
        self.low_streak = {chess.WHITE: 0, chess.BLACK: 0}
        self.would_resign: chess.Color | None = None
        self.draw_streak = 0
        self.lead_streak = 0  # plies the same side has held a decisive material lead
        self.decided = False
        """The material rule decided the game and it plays on (--play-on-simulations): cheap searches, no resigning."""
        self.decided_ply = 0
        self.played_on = 0
        self.outcome: tuple[str, int] | None = None
        self.search: GumbelSearch | None = None
        self.full_now = False  # whether the current search is a full one

    def record(self, result: SearchResult, full: bool) -> None:
        self.played_on += self.decided
        self.positions.append(encode_position(self.board))
        self.policies.append((result.indices.astype(np.uint16), result.policy.astype(np.float16)))
        self.full.append(full)
        self.values.append(result.value)
        self.turns.append(self.board.turn)

    def play(self, move: chess.Move, value: float) -> None:
        """Push the searched move, then decide whether the game is over."""
        cfg, mover = self.cfg, self.board.turn
        self.board.push(move)
        self.outcome = game_over(self.board)
        if self.outcome:
            return
        self.low_streak[mover] = self.low_streak[mover] + 1 if value < cfg.resign_threshold else 0
        if cfg.resign_threshold > -1.0 and self.low_streak[mover] >= cfg.resign_moves:
            if self.may_resign:
                self.outcome = ("resign", -1 if mover == chess.WHITE else 1)
                return
            if self.would_resign is None:
                self.would_resign = mover
        self.draw_streak = self.draw_streak + 1 if abs(value) < cfg.draw_threshold else 0
        if cfg.draw_threshold > 0 and self.board.ply() >= cfg.draw_min_ply and self.draw_streak >= cfg.draw_plies:
            self.outcome = ("adjudicated_draw", 0)
        elif self._material_decided():
            if cfg.play_on_simulations:
                self.decided, self.may_resign = True, False  # on to a real end, as a game from a won ending
                self.decided_ply = self.board.ply()
            else:
                self.outcome = ("material", 1 if material_balance(self.board) > 0 else -1)
        played_on_enough = self.decided and 0 < cfg.play_on_plies <= self.board.ply() - self.decided_ply
        cap = "max_plies" if self.board.ply() >= cfg.max_plies else "play_on_plies" if played_on_enough else None
        if self.outcome is None and cap:
            lead = material_balance(self.board)
            n = cfg.adjudicate_material
            self.outcome = (cap, (lead >= n) - (lead <= -n) if n > 0 else 0)

    def _material_decided(self) -> bool:
        """A lead of ``material_win`` pawns kept for ``material_win_plies`` plies (a bootstrapping label)."""
        n = self.cfg.material_win
        if n <= 0 or self.from_ending or self.decided:
            return False
        lead = material_balance(self.board)
        side = (lead >= n) - (lead <= -n)
        self.lead_streak = self.lead_streak + side if side and self.lead_streak * side >= 0 else side
        return abs(self.lead_streak) >= self.cfg.material_win_plies

    def finish(self) -> GameRecord:
        termination, white_result = self.outcome
        lengths = [len(ix) for ix, _ in self.policies]
        turns = np.array(self.turns, dtype=bool)
        results = np.where(turns, white_result, -white_result).astype(np.int8)
        false_resign = self.would_resign is not None and white_result != (-1 if self.would_resign == chess.WHITE else 1)
        return GameRecord(
            positions=np.array(self.positions, dtype=POSITION_DTYPE),
            policy_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
            policy_indices=np.concatenate([ix for ix, _ in self.policies]),
            policy_probs=np.concatenate([p for _, p in self.policies]),
            full_search=np.array(self.full, dtype=bool),
            values=np.array(self.values, dtype=np.float16),
            results=results,
            moves=[m.uci() for m in self.board.move_stack],
            termination=termination,
            false_resign=bool(false_resign),
            would_resign=self.would_resign is not None,
            played_on=self.played_on,
        )



def play_reference(evaluator: Evaluator, cfg: SelfPlayConfig, n_games: int, seed: int,
                    on_game: Callable[[GameRecord], None] | None, should_stop: Callable[[], bool]) -> list[GameRecord]:
    gcfg = GumbelConfig(simulations=cfg.simulations, max_considered=cfg.max_considered)
    greedy = dataclasses.replace(gcfg, gumbel_scale=0.0)  # past --sample-plies: the search's best move
    decided = dataclasses.replace(gcfg, gumbel_scale=gcfg.gumbel_scale * cfg.play_on_noise)  # --play-on-noise
    buffers = evaluator.new_buffers()
    finished: list[GameRecord] = []
    active: list[Game] = []
    started = 0

    def next_search(game: Game) -> None:
        game.full_now = not game.decided and bool(game.rng.random() < cfg.full_search_prob)
        sims = cfg.play_on_simulations if game.decided else cfg.simulations if game.full_now else cfg.fast_simulations
        search_cfg = greedy if game.board.ply() >= cfg.sample_plies else decided if game.decided else gcfg
        game.search = GumbelSearch(game.board, search_cfg, game.rng, sims)

    given = game_starts(n_games, cfg, seed)
    while (started < n_games or active) and not should_stop():
        while started < n_games and len(active) < cfg.concurrent_games:
            game = Game(cfg, NoiseStream(game_seed(seed, started)), *given.get(started, (None, True)))
            next_search(game)
            active.append(game)
            started += 1
        leaves = []
        still = []
        for game in active:
            wanted = game.search.collect()
            while game.search.done:
                result = game.search.result()
                game.record(result, game.full_now and len(result.moves) > 1)
                game.play(result.move, result.value)
                if game.outcome is not None:
                    break
                next_search(game)
                wanted = game.search.collect()
            if game.outcome is not None:
                rec = rescore(game.finish(), cfg)
                finished.append(rec)
                if on_game is not None:
                    on_game(rec)
                continue
            still.append(game)
            leaves.extend(wanted)
        active = still
        run_step([LeafSource(leaves)], evaluator, buffers)
    return finished

