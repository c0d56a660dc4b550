"""Self-play on every core (or GPU): a pool of long-lived worker processes.

Each worker holds its own copy of the network (one intra-op thread on CPU,
or its own GPU) and plays its share of a cycle's games with the batched
scheduler of :mod:`l4demons.selfplay` (the compiled core when the parent
has it: the parent decides, so a missing core is reported once, not once per
worker). On CUDA several workers share a GPU
(:func:`l4demons.devices.workers_per_gpu`). The learner publishes new weights by
sending them with the next cycle's task. Finished games stream back one by
one over a queue, so the progress bar moves and a stop request loses only
the games in flight.

Workers ignore the stop signals (a terminal's Ctrl-C and ``docker stop``'s
SIGTERM reach the whole process group): the parent decides when to stop and
tells them through an event (:mod:`l4demons.signals`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
from typing import Callable

import numpy as np
import torch

from l4demons import core
from l4demons.network import ChessNet, NetConfig
from l4demons.search import Evaluator
from l4demons.selfplay import GameRecord, SelfPlayConfig, play_games
from l4demons.signals import children_deaf_to_stop, leave_stop_to_parent

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Task:
    state_dict: dict
    games: int
    seed: int
    cfg: SelfPlayConfig
    compiled: bool


def _build(net_cfg: NetConfig, state_dict: dict, device: str, evaluator: Evaluator | None = None) -> Evaluator:
    """An evaluator with these weights: the one given, updated in place (its backend is kept), else a new one."""
    if evaluator is not None:
        evaluator.load_state_dict(state_dict)
        return evaluator
    net = ChessNet(net_cfg)
    net.load_state_dict(state_dict)
    return Evaluator(net, device)


def _worker_main(wid: int, net_cfg: NetConfig, sp_cfg: SelfPlayConfig, device: str, tasks, results, stop,
                 parent: int) -> None:
    leave_stop_to_parent()  # no watchdog: orphaned() below ends this worker between games
    torch.set_num_threads(1)

    def orphaned() -> bool:  # the trainer was killed (kill -9 skips its clean-up): stop too
        return os.getppid() != parent

    evaluator = None
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                return
            continue
        if task is None:
            return
        try:
            evaluator = _build(net_cfg, task.state_dict, device, evaluator)
            before = evaluator.evaluations
            play_games(
                evaluator,
                task.cfg,
                task.games,
                np.random.default_rng(task.seed),
                on_game=lambda rec: results.put(("game", wid, rec)),
                should_stop=lambda: stop.is_set() or orphaned(),
                compiled=task.compiled and core.enabled(),  # a worker without the core says so and plays on
            )
            results.put(("done", wid, evaluator.evaluations - before))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises
            results.put(("error", wid, f"{type(e).__name__}: {e}"))


class SelfPlayPool:
    """``workers`` processes (0 or 1: play in this process, no pool)."""

    def __init__(self, workers: int, net_cfg: NetConfig, sp_cfg: SelfPlayConfig, devices: list[str] | None = None) -> None:
        self.workers = max(1, workers)
        self.net_cfg = net_cfg
        self.sp_cfg = sp_cfg
        self.devices = devices or ["cpu"]
        self.evaluations = 0
        self._evaluator: Evaluator | None = None  # the in-process player's (one worker), kept across cycles
        self._procs: list = []
        if self.workers > 1:
            ctx = mp.get_context("spawn")
            self._tasks = [ctx.Queue() for _ in range(self.workers)]
            self._results = ctx.Queue()
            self._stop = ctx.Event()
            for wid in range(self.workers):
                p = ctx.Process(
                    target=_worker_main,
                    args=(wid, net_cfg, sp_cfg, self.devices[wid % len(self.devices)], self._tasks[wid], self._results,
                          self._stop, os.getpid()),
                    daemon=True,
                    name=f"l4d-selfplay-{wid}",
                )
                with children_deaf_to_stop():
                    p.start()
                self._procs.append(p)

    def play(
        self,
        state_dict: dict,
        games: int,
        seed: int,
        on_game: Callable[[GameRecord], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        cfg: SelfPlayConfig | None = None,
    ) -> list[GameRecord]:
        """Play ``games`` games with these weights (and ``cfg``, default the pool's); stops early when ``should_stop()``."""
        cfg = cfg or self.sp_cfg
        compiled = core.enabled()
        if self.workers == 1:
            self._evaluator = _build(self.net_cfg, state_dict, self.devices[0], self._evaluator)
            before = self._evaluator.evaluations
            out = play_games(self._evaluator, cfg, games, np.random.default_rng(seed), on_game, should_stop,
                             compiled=compiled)
            self.evaluations += self._evaluator.evaluations - before
            return out
        self._stop.clear()
        shares = [games // self.workers + (w < games % self.workers) for w in range(self.workers)]
        busy = 0
        for wid, share in enumerate(shares):
            if share:
                self._tasks[wid].put(_Task(state_dict, share, seed * 1000 + wid, cfg, compiled))
                busy += 1
        records: list[GameRecord] = []
        while busy:
            if should_stop() and not self._stop.is_set():
                self._stop.set()
            try:
                kind, wid, payload = self._results.get(timeout=0.2)
            except queue.Empty:
                dead = [p.name for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"self-play worker(s) died: {', '.join(dead)}")
                continue
            if kind == "game":
                records.append(payload)
                if on_game is not None:
                    on_game(payload)
            elif kind == "done":
                busy -= 1
                self.evaluations += payload
            else:
                self.close()
                raise RuntimeError(f"self-play worker {wid} failed: {payload}")
        return records

    def close(self) -> None:
        for q in getattr(self, "_tasks", []):
            q.put(None)
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        self._procs = []

    def __enter__(self) -> SelfPlayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
