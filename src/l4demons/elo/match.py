"""Matches between two players, game by game in parallel worker processes.

Each game starts from an opening; openings are used in pairs, player A
white in the first game and black in the second. Worker processes
(``spawn``: no forked engine threads, no CUDA surprises) build their players
once from :class:`~l4demons.elo.players.PlayerSpec` and reuse them.

A game ends by the rules (checkmate, stalemate, insufficient material),
by a draw either side may claim (threefold repetition, fifty moves: we
claim for them), or at ``max_plies`` where it is adjudicated a draw.
Scheduling stops at a deadline or when ``should_stop`` says so; games
already running are finished, never cut.

A run's stop is another matter: a :class:`GamePool` given the run's
:class:`~l4demons.signals.StopFlag` ends every game in flight at its next
move when the stop comes, and each of them raises :class:`GamesStopped`
(so does every game submitted after). Its workers ignore the stop signals
a terminal or ``docker stop`` sends the whole process group: the pool's
owner decides, and closing the pool stops them.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import dataclasses
import datetime
import logging
import multiprocessing
import multiprocessing.util
import os
import time
from collections.abc import Callable, Sequence

import chess
import chess.pgn

from l4demons.atomic import atomic_write
from l4demons.elo.errors import EloError
from l4demons.elo.openings import Opening
from l4demons.elo.players import Player, PlayerSpec, build_player, material_balance
from l4demons.signals import StopFlag, children_deaf_to_stop, leave_stop_to_parent

log = logging.getLogger(__name__)

DEFAULT_MAX_PLIES = 400
"""Plies (opening included) after which a game is adjudicated a draw."""


class GamesStopped(EloError):
    """The run was asked to stop: this game was cut off (or never started) and has no result."""


@dataclasses.dataclass(frozen=True)
class GameJob:
    """One game to play, as sent to a worker."""

    index: int
    a: PlayerSpec
    b: PlayerSpec
    a_white: bool
    opening: Opening
    max_plies: int
    seed: int
    event: str
    adjudicate_material: int = 0
    """At ``max_plies``, a lead of this many pawns wins instead of a draw (0: always a draw)."""


@dataclasses.dataclass(frozen=True)
class GameRecord:
    """A finished game."""

    index: int
    """Position in the match schedule."""
    a_white: bool
    """Whether player A had white."""
    result: str
    """``1-0``, ``0-1`` or ``1/2-1/2``."""
    termination: str
    """Why it ended, e.g. ``checkmate``, ``threefold repetition``, ``adjudicated at 400 plies``."""
    plies: int
    """Plies played, opening included."""
    seconds: float
    """Wall time the game took in its worker."""
    pgn: str
    """The game as PGN text, with headers."""

    @property
    def score_a(self) -> float:
        """Player A's points from this game: 1, 0.5 or 0."""
        if self.result == "1/2-1/2":
            return 0.5
        return 1.0 if (self.result == "1-0") == self.a_white else 0.0


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """All games of a match, scored from player A's side."""

    a: str
    b: str
    records: tuple[GameRecord, ...]
    seconds: float
    """Wall time of the whole match."""

    @property
    def wins(self) -> int:
        return sum(r.score_a == 1.0 for r in self.records)

    @property
    def draws(self) -> int:
        return sum(r.score_a == 0.5 for r in self.records)

    @property
    def losses(self) -> int:
        return sum(r.score_a == 0.0 for r in self.records)

    @property
    def games(self) -> int:
        return len(self.records)

    @property
    def score(self) -> float:
        """A's mean points per game (0.5 with no games)."""
        return (self.wins + 0.5 * self.draws) / self.games if self.records else 0.5

    @property
    def pgns(self) -> tuple[str, ...]:
        return tuple(r.pgn for r in self.records)


Tally = tuple[int, int, int]
"""(wins, draws, losses) of player A so far."""


def play_game(white: Player, black: Player, opening: Opening, max_plies: int = DEFAULT_MAX_PLIES,
              headers: dict[str, str] | None = None, adjudicate_material: int = 0,
              should_stop: Callable[[], bool] | None = None) -> tuple[str, str, chess.pgn.Game]:
    """Play one game; returns (result, termination, PGN game).

    A game still going at ``max_plies`` is a draw, or with
    ``adjudicate_material`` a win for a side that many pawns ahead.

    :raises GamesStopped: ``should_stop()`` said so before a move.
    """
    board = opening.board()
    book_plies = len(board.move_stack)
    termination = ""
    while True:
        outcome = board.outcome()
        if outcome is not None:
            result, termination = outcome.result(), outcome.termination.name.lower().replace("_", " ")
            break
        if board.is_repetition(3):
            result, termination = "1/2-1/2", "threefold repetition"
            break
        if board.halfmove_clock >= 100:
            result, termination = "1/2-1/2", "fifty moves"
            break
        if len(board.move_stack) >= max_plies:
            lead = material_balance(board, chess.WHITE)
            if adjudicate_material and abs(lead) >= adjudicate_material:
                result = "1-0" if lead > 0 else "0-1"
                termination = f"adjudicated on material at {max_plies} plies"
            else:
                result, termination = "1/2-1/2", f"adjudicated at {max_plies} plies"
            break
        if should_stop is not None and should_stop():
            raise GamesStopped(f"game stopped at ply {len(board.move_stack)} of {white.name} vs {black.name}")
        player = white if board.turn == chess.WHITE else black
        move = player.choose(board)
        if move not in board.legal_moves:
            raise chess.IllegalMoveError(f"{player.name} played illegal {move} in {board.fen()}")
        board.push(move)
    game = chess.pgn.Game.from_board(board)
    game.headers.update(headers or {})
    game.headers.update({
        "White": white.name, "Black": black.name, "Result": result,
        "Opening": opening.name, "Termination": termination, "PlyCount": str(len(board.move_stack)),
    })
    node: chess.pgn.GameNode = game
    for _ in range(book_plies):
        node = node.variations[0]
    if book_plies:
        node.comment = "book"
    return result, termination, game


_CACHE: collections.OrderedDict[PlayerSpec, Player] = collections.OrderedDict()
_CACHE_SIZE = 6
"""Players a worker keeps between games; the least recently used beyond this is closed (a training run
measures a new candidate every cycle through one long-lived pool)."""


def _close_cached() -> None:
    while _CACHE:
        _, player = _CACHE.popitem()
        try:
            player.close()
        except Exception:  # noqa: BLE001 - closing at exit must not mask the real error
            log.exception("closing %s", player.name)


_STOP: ctypes.c_bool | None = None
"""In a worker: its pool's stop flag, shared memory the owner sets (see :meth:`GamePool.stop`)."""


def _stopped() -> bool:
    return _STOP is not None and bool(_STOP.value)


def _worker_init(stop: ctypes.c_bool, parent: int) -> None:
    global _STOP
    leave_stop_to_parent(parent)
    _STOP = stop
    # One core per worker: games run side by side, so a net player's torch
    # must not spread over every core (set before torch is first imported).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # Workers leave through os._exit, which skips atexit; Finalize still runs.
    multiprocessing.util.Finalize(None, _close_cached, exitpriority=10)


def run_job(job: GameJob, should_stop: Callable[[], bool] = _stopped) -> GameRecord:
    """Play ``job`` with this process's cached players (built on first use).

    :raises GamesStopped: ``should_stop()`` (default: this worker's pool was stopped) before a move.
    """
    if should_stop():
        raise GamesStopped(f"game {job.index + 1} of {job.event} not started: stopping")
    started = time.perf_counter()
    players = []
    for spec in (job.a, job.b):
        if spec not in _CACHE:
            _CACHE[spec] = build_player(spec, job.seed)
        _CACHE.move_to_end(spec)
        players.append(_CACHE[spec])
    while len(_CACHE) > _CACHE_SIZE:
        _, old = _CACHE.popitem(last=False)
        old.close()
    for offset, player in enumerate(players):
        player.new_game(job.seed * 2 + offset)
    white, black = players if job.a_white else players[::-1]
    headers = {
        "Event": job.event, "Site": "?", "Round": str(job.index + 1),
        "Date": datetime.date.today().strftime("%Y.%m.%d"),
    }
    result, termination, game = play_game(white, black, job.opening, job.max_plies, headers, job.adjudicate_material,
                                          should_stop)
    return GameRecord(
        index=job.index, a_white=job.a_white, result=result, termination=termination,
        plies=int(game.headers["PlyCount"]), seconds=time.perf_counter() - started,
        pgn=str(game),
    )


def schedule(a: PlayerSpec, b: PlayerSpec, openings: Sequence[Opening], games: int, *,
             max_plies: int = DEFAULT_MAX_PLIES, seed: int = 0, event: str = "l4demons elo",
             adjudicate_material: int = 0) -> list[GameJob]:
    """Games in order: opening k is played by games 2k (A white) and 2k+1 (A black)."""
    if not openings:
        raise ValueError("a match needs at least one opening")
    return [
        GameJob(i, a, b, i % 2 == 0, openings[(i // 2) % len(openings)], max_plies, seed * 1_000_003 + i, event,
                adjudicate_material)
        for i in range(games)
    ]


def default_workers(games: int) -> int:
    """One worker per core this process may use, never more than the games."""
    # Imported here: devices imports torch, which a worker must not load before _worker_init sets its threads.
    from l4demons.devices import cpu_count

    return max(1, min(cpu_count(), games))


class GamePool:
    """Worker processes that play :class:`GameJob` s, keeping players between games.

    ``workers=0`` plays each job in this process when it is submitted (tests,
    debugging); the returned future is then already done. Use as a context
    manager: leaving it closes every player (engines quit). With ``stop``
    (the run's flag), its first request stops the pool (:meth:`stop`).
    """

    def __init__(self, workers: int, stop: StopFlag | None = None) -> None:
        self.workers = max(0, workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        context = multiprocessing.get_context("spawn")
        self._stop = context.RawValue(ctypes.c_bool, False)
        if self.workers > 0:
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init,
                                                initargs=(self._stop, os.getpid()))
        if stop is not None:
            stop.on_request(self.stop)

    def stop(self) -> None:
        """End every game in flight at its next move, and refuse new ones: their futures raise :class:`GamesStopped`.

        Only sets a flag in shared memory, so a signal handler may call it.
        """
        self._stop.value = True

    @property
    def stopped(self) -> bool:
        return bool(self._stop.value)

    @property
    def slots(self) -> int:
        """How many games may run at once."""
        return max(1, self.workers)

    def submit(self, job: GameJob) -> cf.Future[GameRecord]:
        if self._pool is not None and not self.stopped:
            with children_deaf_to_stop():  # the executor starts its workers in submit
                return self._pool.submit(run_job, job)
        future: cf.Future[GameRecord] = cf.Future()
        try:
            future.set_result(run_job(job, lambda: self.stopped))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Stop the games still in flight (an error or a stop left them), then the workers and their players."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            _close_cached()

    def __enter__(self) -> GamePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def borrowed_or_new(pool: GamePool | None, workers: int) -> contextlib.AbstractContextManager[GamePool]:
    """The caller's pool, left open afterwards; else a new one of ``workers``, closed afterwards."""
    return contextlib.nullcontext(pool) if pool is not None else GamePool(workers)


def play_match(
    a: PlayerSpec,
    b: PlayerSpec,
    openings: Sequence[Opening],
    games: int | None = None,
    *,
    max_plies: int = DEFAULT_MAX_PLIES,
    workers: int | None = None,
    time_budget_s: float | None = None,
    should_stop: Callable[[Tally], bool] | None = None,
    on_game: Callable[[GameRecord], None] | None = None,
    seed: int = 0,
    event: str = "l4demons elo",
    pool: GamePool | None = None,
    expected_game_s: float = 0.0,
    adjudicate_material: int = 0,
) -> MatchResult:
    """Play up to ``games`` games (default: each opening twice) between A and B.

    ``workers`` defaults to one per core (at most one per game); 0 plays in
    this process. With ``time_budget_s``, no game starts once the time
    left is shorter than the longest game so far, so the match ends within
    its budget unless a game runs longer than all before it. ``should_stop(tally)`` is
    asked after every finished game; games already running still count. A
    ``pool`` of the caller's is used as is (and left open): no processes start.
    ``expected_game_s``: how long a game probably takes (see :func:`time_for_another`).
    """
    jobs = schedule(a, b, openings, 2 * len(openings) if games is None else games,
                    max_plies=max_plies, seed=seed, event=event, adjudicate_material=adjudicate_material)
    started = time.monotonic()
    deadline = None if time_budget_s is None else started + time_budget_s
    records: list[GameRecord] = []
    tally = [0, 0, 0]
    stop = False
    n_workers = default_workers(len(jobs)) if workers is None else min(workers, len(jobs))
    with borrowed_or_new(pool, n_workers) as pool:
        pending: set[cf.Future[GameRecord]] = set()
        queue = list(jobs)
        while queue or pending:
            while (queue and len(pending) < pool.slots and not stop
                   and time_for_another(records, deadline, expected_game_s)):
                pending.add(pool.submit(queue.pop(0)))
            if not pending:
                break
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                record = future.result()
                records.append(record)
                tally[{1.0: 0, 0.5: 1, 0.0: 2}[record.score_a]] += 1
                if on_game is not None:
                    on_game(record)
                if should_stop is not None and should_stop((tally[0], tally[1], tally[2])):
                    stop = True
    records.sort(key=lambda r: r.index)
    result = MatchResult(a.name, b.name, tuple(records), time.monotonic() - started)
    log.debug("%s vs %s: +%d =%d -%d in %.1fs", a.name, b.name, result.wins, result.draws,
             result.losses, result.seconds)
    return result


def time_for_another(records: Sequence[GameRecord], deadline: float | None, expected_s: float = 0.0,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether a game as long as the longest so far (or ``expected_s``) still fits before ``deadline``.

    The longest, not the mean: a game started just in time by the mean
    overruns the budget half the time. Before any game has finished only
    the caller's ``expected_s`` (say, games of earlier calls) is known;
    without it the first wave always starts.
    """
    if deadline is None:
        return True
    longest = max((r.seconds for r in records), default=expected_s)
    return clock() + max(longest, expected_s) <= deadline


def write_pgn(path: str | os.PathLike[str], pgns: Sequence[str]) -> None:
    """Write games to ``path`` atomically (``.tmp`` then rename)."""
    atomic_write(path, "\n\n".join(pgns) + ("\n" if pgns else ""))
