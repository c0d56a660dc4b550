"""Self-play: many games at once in one process, each move a Gumbel search.

All games in flight share every network call (one
:func:`l4demons.search.run_step` per call), so a CPU core sees batches of
hundreds of leaves instead of one. The games run in the compiled core
(:mod:`l4demons.core`) when it is available: it fills one contiguous batch
and Python only runs the network. The Python implementation below is the
reference the core is tested against and the fallback without it; both
play the same games for the same seed (each game draws its random numbers
from its own :class:`~l4demons.search.noise.NoiseStream`).

- Playout-cap randomisation (KataGo): a fraction of moves get a full search
  and become policy targets; the rest get a fast search and only teach the
  value head. More games per hour, same policy-target quality.
- Resignation when the search value stays below a threshold; a fraction of
  games is played out anyway and reports whether resigning would have been
  wrong.
- Draw adjudication when the search value stays near zero late in a game
  (off by default: an untrained net calls every position a draw).
- A maximum game length; at that length the game is a draw, or, with
  material adjudication on, a win for the side at least N pawns ahead; and
  a lead of ``material_win`` pawns kept for ``material_win_plies`` plies
  ends the game as a win. These are training-label heuristics for
  bootstrapping (an untrained net's games rarely end in mate), never used
  in play; ``--adjudicate-material 0 --material-win 0`` turns them off.
- Play-on (KataGo's reduced visits once a game is decided; on by default):
  with ``play_on_simulations`` set, the material rule no longer ends a game but
  marks it decided, and the game goes on with searches of that many
  simulations, never full ones (``full_search`` 0: those positions teach
  the value head only), to mate, stalemate, another rule of chess or the
  length cap. A decided game is played as one from a won ending
  (:mod:`l4demons.endgames`): no material rule and no resignation (a
  would-be resignation is recorded as in a played-out game), so its label
  is the real outcome; ``GameRecord.played_on`` counts its cheap plies.
- Starts other than the opening (:func:`game_starts`): a share of games
  from the opening a piece short (:mod:`l4demons.odds`, played by the
  usual rules; a tenth by default) and, optionally, a share from simple
  won endings (:mod:`l4demons.endgames`).

A finished game is a :class:`GameRecord` of compact arrays: about 100 bytes
per position plus the sparse policy.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import chess
import numpy as np

from l4demons import core, endgames, odds
from l4demons.encoding import POSITION_DTYPE, encode_position, material_balance
from l4demons.rescore import rescored_results
from l4demons.search import Evaluator, GumbelConfig, GumbelSearch, SearchResult
from l4demons.search.batch import BatchBuffers, LeafSource, run_step
from l4demons.search.noise import NoiseStream, game_seed

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SelfPlayConfig:
    simulations: int = 32
    """Simulations of a full search (its moves become policy targets)."""
    fast_simulations: int = 8
    """Simulations of a fast search (playout-cap randomisation)."""
    full_search_prob: float = 0.25
    """Probability that a move gets the full search."""
    max_considered: int = 16
    """Root actions of Gumbel sequential halving."""
    max_plies: int = 300
    """Game length cap (plies)."""
    adjudicate_material: int = 3
    """At the length cap, a lead of this many pawns wins; 0 scores every capped game a draw."""
    material_win: int = 5
    """A lead of this many pawns held for --material-win-plies plies wins the game; 0 disables it."""
    material_win_plies: int = 10
    """Plies a lead of --material-win pawns must be held to win the game."""
    resign_threshold: float = -0.9
    """Resign when the search value stays below this; -1 disables resignation."""
    resign_moves: int = 3
    """Resign after this many consecutive own moves below --resign-threshold."""
    resign_playthrough: float = 0.1
    """Fraction of games that never resign, to measure false resignations."""
    draw_threshold: float = 0.0
    """Adjudicate a draw when |value| stays below this; 0 disables it."""
    draw_min_ply: int = 120
    """No draw adjudication before this ply."""
    draw_plies: int = 16
    """Adjudicate a draw after this many consecutive plies below --draw-threshold."""
    concurrent_games: int = 32
    """Games in flight per process (their leaves share network calls)."""
    endgame_share: float = 0.0
    """Share of games that start from a simple won ending (KQvK, KRvK, KBBvK...) and play to mate or a rule of
    chess: no material rule, no resignation (l4demons.endgames)."""
    odds_share: float = 0.1
    """Share of games that start from the initial position a piece short (a queen, rook, bishop or knight of
    either side) and play by the usual rules, so that the value of material in the opening is in the data
    (l4demons.odds; 0.1 against 0: +176 and +61 Elo in two 30-minute runs, README)."""
    sample_plies: int = 300
    """Moves before this ply are sampled (the search's Gumbel noise picks among good moves), later ones are the
    search's best (--max-plies or more: every move sampled; 30 measured even with that in 220 games, README)."""
    play_on_simulations: int = 4
    """Once --material-win says a game is decided, play it on with searches of this many simulations (never a full
    search: those positions teach the value head only) to mate, stalemate, a rule of chess or the length cap, with
    no resignation; 0 ends it as a win by material instead (4 against 0: +44 and +45 Elo in two 30-minute runs,
    README)."""
    rescore_known_wins: bool = False
    """A game that reaches a queen or a rook against a bare king is scored as the stronger side's win, whatever
    its play-on made of it (l4demons.rescore: Lc0's tablebase rescoring, for the one ending that needs no table;
    +73 and -53 Elo in two 30-minute arms runs, even together, README: off)."""

    def __post_init__(self) -> None:
        if self.simulations < 2 or self.fast_simulations < 2:
            raise ValueError("simulations must be at least 2")
        if not 0.0 <= self.full_search_prob <= 1.0:
            raise ValueError("full_search_prob must be in [0, 1]")
        if self.max_plies < 2:
            raise ValueError("max_plies must be at least 2")
        if self.concurrent_games < 1:
            raise ValueError("concurrent_games must be at least 1")
        if not 0.0 <= self.endgame_share <= 1.0:
            raise ValueError("endgame_share must be in [0, 1]")
        if not 0.0 <= self.odds_share <= 1.0:
            raise ValueError("odds_share must be in [0, 1]")
        if self.sample_plies < 0:
            raise ValueError("sample_plies must be 0 or more")
        if self.play_on_simulations == 1 or self.play_on_simulations < 0:
            raise ValueError("play_on_simulations must be 0 (off) or at least 2")


@dataclasses.dataclass
class GameRecord:
    """One finished self-play game, compact. Index i is the i-th position played."""

    positions: np.ndarray
    """[n] of encoding.POSITION_DTYPE."""
    policy_offsets: np.ndarray
    """[n + 1] int32: position i's policy is entries offsets[i]:offsets[i+1]."""
    policy_indices: np.ndarray
    """[total] uint16 policy indices (all legal moves)."""
    policy_probs: np.ndarray
    """[total] float16 improved-policy probabilities."""
    full_search: np.ndarray
    """[n] bool: the policy came from a full search (a policy target)."""
    values: np.ndarray
    """[n] float16 search value, side to move's view."""
    results: np.ndarray
    """[n] int8 game result for the side to move: 1 win, 0 draw, -1 loss."""
    moves: list[str] = dataclasses.field(default_factory=list)
    """The moves played, in UCI notation (for PGN export and checks; not kept in replay)."""
    termination: str = ""
    """checkmate, stalemate, repetition, fifty_moves, insufficient, resign, adjudicated_draw, max_plies..."""
    false_resign: bool = False
    """A played-out game in which a side that would have resigned did not lose."""
    would_resign: bool = False
    played_on: int = 0
    """Positions searched after the material rule decided the game (its last ``played_on``; 0 without play-on)."""
    rescored: bool = False
    """The results are a known win's, not the game's own (``SelfPlayConfig.rescore_known_wins``)."""

    def __len__(self) -> int:
        return len(self.positions)


def game_over(board: chess.Board) -> tuple[str, int] | None:
    """(termination, result for White: 1/0/-1) when the rules end the game, else None."""
    if not any(board.generate_legal_moves()):
        if board.is_check():
            return "checkmate", -1 if board.turn == chess.WHITE else 1
        return "stalemate", 0
    if board.is_insufficient_material():
        return "insufficient", 0
    if board.halfmove_clock >= 100:
        return "fifty_moves", 0
    if board.halfmove_clock >= 8 and board.is_repetition(3):
        return "repetition", 0
    return None


class _Game:
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
            else:
                self.outcome = ("material", 1 if material_balance(self.board) > 0 else -1)
        if self.outcome is None and self.board.ply() >= cfg.max_plies:
            lead = material_balance(self.board)
            n = cfg.adjudicate_material
            self.outcome = ("max_plies", (lead >= n) - (lead <= -n) if n > 0 else 0)

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


def play_games(
    evaluator: Evaluator,
    cfg: SelfPlayConfig,
    n_games: int,
    rng: np.random.Generator,
    on_game: Callable[[GameRecord], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    compiled: bool | None = None,
) -> list[GameRecord]:
    """Play ``n_games`` with up to ``cfg.concurrent_games`` in flight.

    Games do not wait for each other: every network call takes the leaves
    that each game's current search wants now, and a game whose search has
    finished plays its move and starts the next search at once, so batches
    stay large. ``should_stop`` is polled between network calls; when it
    turns true the games in flight are dropped and the finished ones returned.
    ``compiled`` picks the compiled core (True) or the Python reference
    (False); the default uses the core when :func:`l4demons.core.enabled`.
    """
    seed = int(rng.integers(0, 2**63))
    if core.enabled() if compiled is None else compiled:
        return _play_compiled(evaluator, cfg, n_games, seed, on_game, should_stop)
    return _play_reference(evaluator, cfg, n_games, seed, on_game, should_stop)


def _play_reference(evaluator: Evaluator, cfg: SelfPlayConfig, n_games: int, seed: int,
                    on_game: Callable[[GameRecord], None] | None, should_stop: Callable[[], bool]) -> list[GameRecord]:
    gcfg = GumbelConfig(simulations=cfg.simulations, max_considered=cfg.max_considered)
    greedy = dataclasses.replace(gcfg, gumbel_scale=0.0)  # past --sample-plies: the search's best move
    buffers = evaluator.new_buffers()
    finished: list[GameRecord] = []
    active: list[_Game] = []
    started = 0

    def next_search(game: _Game) -> None:
        game.full_now = not game.decided and bool(game.rng.random() < cfg.full_search_prob)
        sims = cfg.play_on_simulations if game.decided else cfg.simulations if game.full_now else cfg.fast_simulations
        game.search = GumbelSearch(game.board, gcfg if game.board.ply() < cfg.sample_plies else greedy, game.rng, sims)

    given = game_starts(n_games, cfg, seed)
    while (started < n_games or active) and not should_stop():
        while started < n_games and len(active) < cfg.concurrent_games:
            game = _Game(cfg, NoiseStream(game_seed(seed, started)), *given.get(started, (None, True)))
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


_CORE_FIELDS = (
    "simulations", "fast_simulations", "full_search_prob", "max_considered", "max_plies", "adjudicate_material",
    "material_win", "material_win_plies", "resign_threshold", "resign_moves", "resign_playthrough", "draw_threshold",
    "draw_min_ply", "draw_plies", "concurrent_games", "sample_plies", "play_on_simulations",
)
"""The SelfPlayConfig fields the core implements (a test checks that with _SHARED_FIELDS this is all of them)."""
_SHARED_FIELDS = ("endgame_share", "odds_share", "rescore_known_wins")
"""The SelfPlayConfig fields applied here in Python for both implementations (which games start where, and the
results of finished games)."""


def rescore(rec: GameRecord, cfg: SelfPlayConfig) -> GameRecord:
    """``rec`` with a known win's results where ``cfg`` asks for them (l4demons.rescore), else ``rec`` itself."""
    if not cfg.rescore_known_wins or (results := rescored_results(rec.positions, rec.results)) is None:
        return rec
    return dataclasses.replace(rec, results=results, rescored=True)


def game_starts(n_games: int, cfg: SelfPlayConfig, seed: int) -> dict[int, tuple[chess.Board, bool]]:
    """Game number -> (its start, whether it is an ending) for the games that do not start from the opening.

    A game drawn for both an odds start and an ending starts from the ending.
    """
    given = {i: (board, False) for i, board in odds.starts(n_games, cfg.odds_share, seed).items()}
    given.update({i: (board, True) for i, board in endgames.starts(n_games, cfg.endgame_share, seed).items()})
    return given


class _CompiledGames:
    """The core's scheduler of many games as a batch source."""

    def __init__(self, cfg: SelfPlayConfig, n_games: int, seed: int) -> None:
        self.cfg = cfg
        c = core.module()
        params = c.SelfPlayParams()
        for name in _CORE_FIELDS:
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


def _play_compiled(evaluator: Evaluator, cfg: SelfPlayConfig, n_games: int, seed: int,
                   on_game: Callable[[GameRecord], None] | None, should_stop: Callable[[], bool]) -> list[GameRecord]:
    source = _CompiledGames(cfg, n_games, seed)
    buffers = evaluator.new_buffers(source.games.max_rows)
    finished: list[GameRecord] = []
    while not source.games.finished and not should_stop():
        run_step([source], evaluator, buffers)
        for rec in source.take_finished():
            finished.append(rec)
            if on_game is not None:
                on_game(rec)
    return finished
