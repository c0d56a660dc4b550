"""Labelling in one process per core: the teacher's own games, or the hub's positions.

Each job runs in a process of its own with its own teacher engine. The
processes ignore the group's Ctrl-C and SIGTERM (the warm start decides
what a stop means) and end at their next position when told; a teacher
that fails in one of them ends them all.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from l4demons.devices import cpu_count
from l4demons.pretrain import hub_positions, labels
from l4demons.progress import progress
from l4demons.signals import children_deaf_to_stop, leave_stop_to_parent

if TYPE_CHECKING:
    from l4demons.pretrain.run import PretrainConfig

log = logging.getLogger("l4demons.train")


_STOP: ctypes.c_bool | None = None
"""In a labelling process: set by the parent when its labelling should end."""


def _label_init(stop: ctypes.c_bool, parent: int) -> None:
    global _STOP
    leave_stop_to_parent(parent)  # the parent decides what a Ctrl-C means
    _STOP = stop


def _label_worker(job: tuple) -> object:
    fn, args, kwargs = job
    return fn(*args, should_stop=lambda: bool(_STOP.value), **kwargs)


def label_teacher_games(path: str, p: PretrainConfig, deadline: float, limit: int, stop) -> list:
    """:func:`labels.teacher_games` in one process per core; an empty list if stopped.

    :raises labels.TeacherError: the teacher failed in a labelling process.
    """
    from l4demons.elo.openings import load_openings

    workers = p.workers or cpu_count()
    openings = [list(o.moves) for o in load_openings(500, plies=8, seed=p.seed)]
    per_worker = -(-limit // workers)
    jobs = [(labels.teacher_games, (path, openings, p.limit, p.multipv, p.random_share, p.max_plies, deadline,
                                    per_worker, p.seed * 1000 + w), {"random_plies": p.random_plies})
            for w in range(workers)]
    return [g for games in label_in_parallel(jobs, deadline, stop) for g in games]


def label_hub_positions(path: str, p: PretrainConfig, games: list[hub_positions.HubGame], deadline: float,
                        stop) -> tuple[list, int]:
    """:func:`hub_positions.label_hub_games` over ``games``, dealt out to one process per core;
    ``(records, positions skipped)``, no records if stopped.

    :raises labels.TeacherError: the teacher failed in a labelling process.
    """
    workers = max(1, min(p.workers or cpu_count(), len(games)))
    jobs = [(hub_positions.label_hub_games, (path, games[w::workers], p.limit, p.multipv, deadline,
                                             p.seed * 1000 + w), {}) for w in range(workers)]
    results = label_in_parallel(jobs, deadline, stop)
    return [g for records, _ in results for g in records], sum(skipped for _, skipped in results)


def label_in_parallel(jobs: list[tuple[Callable, tuple, dict]], deadline: float, stop) -> list:
    """Each job ``(fn, args, kwargs)`` as ``fn(*args, should_stop=..., **kwargs)`` in a process of its own;
    their results in order, or an empty list if stopped.

    The processes ignore the group's Ctrl-C and SIGTERM (``stop`` is this process's to decide) and
    end at their next position when told.

    :raises labels.TeacherError: the teacher failed in a labelling process.
    """
    ctx = multiprocessing.get_context("spawn")
    done = ctx.RawValue(ctypes.c_bool, False)
    stop.on_request(lambda: setattr(done, "value", True))  # at once, even while this process waits
    with cf.ProcessPoolExecutor(len(jobs), mp_context=ctx, initializer=_label_init,
                                initargs=(done, os.getpid())) as pool:
        try:
            with children_deaf_to_stop():
                futures = [pool.submit(_label_worker, job) for job in jobs]
            log.info("[TRAIN] warm start: labelling in %d processes", len(jobs))
            with progress(desc="[TRAIN] labelling", unit="s",
                          total=None if deadline == float("inf") else int(deadline - time.time())) as bar:
                while not stop.requested:
                    _, running = cf.wait(futures, timeout=1.0, return_when=cf.FIRST_EXCEPTION)
                    bar.update(1)
                    if not running or any(f.exception() for f in futures if f.done()):
                        break
            if stop.requested:
                return []
            return [f.result() for f in futures]
        finally:
            done.value = True  # the others stop too (a stop, a failed teacher): leaving the pool waits for them
