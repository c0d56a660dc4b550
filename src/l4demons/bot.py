"""The bot: one core behind every front door (HTTP, UCI, lichess-bot, matches).

``choose_move(board, time_left_ms)`` runs a PUCT search with batched network
calls until its budget is spent (time, nodes, or a stop request) and returns
the best move so far with the move probabilities. The network is essential:
it supplies every prior and every value the search sees.

Time management: a move gets ``time_left / moves_to_go + 3/4 increment``,
never more than a fixed fraction of what is left, minus a safety margin for
transport and process overhead, and at least a small floor. A single legal
move is answered at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Callable

import chess

from l4demons.devices import resolve_device
from l4demons.network import ChessNet, NetConfig, build_network, load_network
from l4demons.search import Evaluator, PuctConfig, PuctSearch


@dataclasses.dataclass(frozen=True)
class TimePolicy:
    moves_to_go: int = 30
    """Moves the remaining clock is assumed to cover when the GUI does not say."""
    max_fraction: float = 0.25
    """Never spend more than this fraction of the remaining clock on one move."""
    safety_ms: float = 50.0
    """Kept back for transport and overhead."""
    floor_ms: float = 10.0
    """The least a move gets (clock permitting)."""

    def budget_ms(self, time_left_ms: float, increment_ms: float = 0.0, moves_to_go: int | None = None) -> float:
        """Milliseconds this move may take."""
        mtg = max(1, moves_to_go or self.moves_to_go)
        budget = time_left_ms / mtg + 0.75 * increment_ms
        budget = min(budget, time_left_ms * self.max_fraction)
        budget = min(budget, time_left_ms - self.safety_ms)
        return max(self.floor_ms if time_left_ms > 2 * self.safety_ms else 0.0, budget - self.safety_ms / 2)


@dataclasses.dataclass(frozen=True)
class SearchInfo:
    """Progress of a search, for UCI ``info`` lines and logs."""

    nodes: int
    visits: int
    depth: int
    elapsed_ms: float
    value: float
    pv: list[chess.Move]


class Bot:
    """A network plus a search; thread-safe per call (one search at a time)."""

    def __init__(self, net: ChessNet, device: str = "cpu", puct: PuctConfig = PuctConfig(), time_policy: TimePolicy = TimePolicy()) -> None:
        self.device = resolve_device(device)
        self.evaluator = Evaluator(net, self.device)
        self.puct = puct
        self.time_policy = time_policy
        self.config: NetConfig = net.cfg
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path, device: str = "auto", **kwargs: object) -> Bot:
        """:raises l4demons.network.WeightsError: the file cannot be used."""
        dev = resolve_device(device)
        net, _ = load_network(path, dev)
        return cls(net, dev, **kwargs)

    @classmethod
    def random(cls, cfg: NetConfig = NetConfig(), seed: int = 0, device: str = "cpu") -> Bot:
        """An untrained bot (tests, and serving when asked for explicitly)."""
        return cls(build_network(cfg, seed), device)

    def choose_move(
        self,
        board: chess.Board,
        time_left_ms: float | None = None,
        *,
        increment_ms: float = 0.0,
        moves_to_go: int | None = None,
        movetime_ms: float | None = None,
        nodes: int | None = None,
        stop: threading.Event | None = None,
        on_info: Callable[[SearchInfo], None] | None = None,
        info_interval_ms: float = 500.0,
    ) -> tuple[chess.Move, dict[str, float]]:
        """Best move for ``board`` and probabilities over its legal moves.

        The budget is the tightest of ``movetime_ms``, the clock
        (``time_left_ms``, ``increment_ms``, ``moves_to_go``) and ``nodes``;
        with none of them the search runs until ``stop`` is set (or 800
        visits when there is no ``stop`` either).

        :raises ValueError: the game is already over in ``board``.
        """
        if board.is_game_over():
            raise ValueError("the game is over in this position; there is no move to make")
        start = time.perf_counter()
        deadline = None
        if time_left_ms is not None:
            deadline = self.time_policy.budget_ms(time_left_ms, increment_ms, moves_to_go)
        if movetime_ms is not None:
            deadline = movetime_ms if deadline is None else min(deadline, movetime_ms)
        if deadline is None and nodes is None and stop is None:
            nodes = 800
        with self._lock:
            search = PuctSearch(board.copy(), self.puct)
            last_info = start
            while True:
                leaves = search.collect()
                if leaves:
                    logits, values = self.evaluator.evaluate(leaves)
                    for leaf, lg, v in zip(leaves, logits, values):
                        search.deliver(leaf, lg, float(v))
                elapsed = (time.perf_counter() - start) * 1000
                if search.done or (stop is not None and stop.is_set()):
                    break
                if nodes is not None and search.visits >= nodes:
                    break
                if deadline is not None and elapsed >= deadline:
                    break
                if on_info is not None and (time.perf_counter() - last_info) * 1000 >= info_interval_ms:
                    last_info = time.perf_counter()
                    on_info(self._info(search, elapsed))
            result = search.result()
            if on_info is not None:
                on_info(self._info(search, (time.perf_counter() - start) * 1000))
        probs = {m.uci(): float(p) for m, p in zip(result.moves, result.policy)}
        return result.move, probs

    @staticmethod
    def _info(search: PuctSearch, elapsed_ms: float) -> SearchInfo:
        result = search.result()
        return SearchInfo(
            nodes=search.nodes,
            visits=search.visits,
            depth=search.max_depth,
            elapsed_ms=elapsed_ms,
            value=result.value,
            pv=search.principal_variation(),
        )
