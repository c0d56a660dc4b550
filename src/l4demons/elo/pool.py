"""Worker processes that play :class:`~l4demons.elo.game.GameJob` s, keeping their players between games.

Workers (``spawn``: no forked engine threads, no CUDA surprises) build
their players once from :class:`~l4demons.elo.players.PlayerSpec` and
reuse them. A :class:`GamePool` given the run's
:class:`~l4demons.signals.StopFlag` ends every game in flight at its next
move when the stop comes, and each of them raises
:class:`~l4demons.elo.game.GamesStopped` (so does every game submitted
after). Its workers ignore the stop signals a terminal or ``docker stop``
sends the whole process group: the pool's owner decides, and closing the
pool stops them.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import datetime
import logging
import multiprocessing
import multiprocessing.util
import os
import sys
import time
from collections.abc import Callable

from l4demons.elo.game import GameJob, GameRecord, GamesStopped, play_game
from l4demons.elo.players import Player, PlayerSpec, build_player
from l4demons.signals import StopFlag, children_deaf_to_stop, leave_stop_to_parent

log = logging.getLogger(__name__)


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
    # must not spread over every core. The variables reach a torch imported
    # later; one already here (spawn re-imports the parent's main module, and
    # a script that imports torch at the top brings it) is told directly:
    # two threads a worker on two cores gave a net 7 times fewer nodes a move.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if "torch" in sys.modules:
        try:
            threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
        except ValueError:
            threads = 1
        sys.modules["torch"].set_num_threads(threads)
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
    played = play_game(white, black, job.opening, job.max_plies, headers, job.adjudicate_material, should_stop)
    white_spent, black_spent = played.thinking
    return GameRecord(
        index=job.index, a_white=job.a_white, result=played.result, termination=played.termination,
        plies=int(played.game.headers["PlyCount"]), seconds=time.perf_counter() - started,
        pgn=str(played.game),
        thinking=(white_spent, black_spent) if job.a_white else (black_spent, white_spent),
    )


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
