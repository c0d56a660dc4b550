"""The bot: one core behind every front door (HTTP, UCI, lichess-bot, matches).

``choose_move(board, time_left_ms)`` runs a PUCT search with batched network
calls until its budget is spent (time, nodes, depth, or a stop request) and
returns the best move so far with the move probabilities. The search runs in
the compiled core when it is built (:mod:`l4demons.search.play`), so the
clock goes to the network. The network is essential: it supplies every
prior and every value the search sees.

Time management: a move gets ``time_left / moves_to_go + 3/4 increment``,
never more than a fixed fraction of what is left, minus a safety margin for
transport and process overhead, and at least a small floor. The budget is a
hard limit: the search stops before a network call that would probably end
past it (the time of the next call is predicted from the last ones), so the
overshoot is the prediction error, not a whole call. A single legal move is
answered at once, without the network.

Several threads may call ``choose_move`` on one bot at the same time (an
HTTP server with several games): their searches advance in lockstep, and
each network call evaluates the leaves of all of them together, so a second
game costs a bigger batch rather than a turn in a queue. Whichever waiting
caller is free drives the shared loop; there is no background thread.

Win/draw/loss: the search backs up one number, W - L (the evaluator folds
the network's three outputs into it), so a search has no draw share of
its own. Asked for W/D/L (``choose_move(..., wdl=True)``), the bot also
runs the network's W/D/L head once on the root and reports
:func:`search_wdl`: the search's value as W - L, the head's draw share
beside it (see there).
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Callable

import chess

from l4demons.devices import resolve_device
from l4demons.network import ChessNet, NetConfig, build_network, load_network
from l4demons.search import Evaluator, PuctConfig, run_step
from l4demons.search.batch import write_leaves
from l4demons.search.kept import KeptTrees
from l4demons.search.play import PlaySearch, puct_search
from l4demons.search.tree import root_leaf

logger = logging.getLogger(__name__)

_COST_MEMORY_S = 30.0
"""How long a step's measured cost informs the deadline check."""
_SETTLED_STEPS = 4
"""Steps without a network call after which a timed search has settled (``Bot._should_stop``)."""


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
        """Milliseconds this move may take (0 when the clock has nothing to spare)."""
        mtg = max(1, moves_to_go or self.moves_to_go)
        budget = time_left_ms / mtg + 0.75 * increment_ms
        budget = min(budget, time_left_ms * self.max_fraction)
        budget = min(budget, time_left_ms - self.safety_ms)
        return max(self.floor_ms if time_left_ms > 2 * self.safety_ms else 0.0, budget - self.safety_ms / 2)


@dataclasses.dataclass(frozen=True)
class SearchInfo:
    """Progress of a search, for UCI ``info`` lines and logs."""

    nodes: int
    """Network evaluations so far."""
    visits: int
    """Simulations finished (terminal hits included)."""
    depth: int
    """Deepest path the tree reached."""
    elapsed_ms: float
    value: float
    """Search value of the best move, side to move's view, in [-1, 1]."""
    pv: list[chess.Move]
    wdl: tuple[float, float, float] | None = None
    """Win, draw and loss probabilities, side to move's view, with W - L = ``value``
    (:func:`search_wdl`); None unless ``choose_move`` was asked for them."""


@dataclasses.dataclass(eq=False)
class _Job:
    """One ``choose_move`` call in flight (owned by whichever thread drives)."""

    search: PlaySearch
    start: float
    deadline_ms: float | None
    nodes: int | None
    depth: int | None
    stop: threading.Event | None
    on_info: Callable[[SearchInfo], None] | None
    info_interval_ms: float
    wdl_root: chess.Board | None = None
    """The root, while the network's W/D/L for it is still wanted (the driving thread evaluates it)."""
    head_wdl: tuple[float, float, float] | None = None
    """The network's own W/D/L for the root, once evaluated."""
    last_info: float = 0.0
    idle_steps: int = 0
    """Steps running in which this search made no network call (every descent ended at a game's end)."""
    finished: bool = False
    error: BaseException | None = None


class Bot:
    """A network plus a search; any number of threads may call ``choose_move``."""

    def __init__(self, net: ChessNet, device: str = "cpu", puct: PuctConfig | None = None,
                 time_policy: TimePolicy = TimePolicy(), backend: str | None = None,
                 clock: Callable[[], float] = time.perf_counter, reuse_tree: bool = True) -> None:
        """``puct``: the search's settings (default: :meth:`PuctConfig.for_device`, the device's own).
        ``backend``: the network call's :mod:`l4demons.inference` backend (default: the fastest here).
        ``clock``: seconds, against which the time budgets are kept (a test passes a fake one).
        ``reuse_tree``: a move's search starts from the subtree an earlier search of the same game
        built below this position (:mod:`l4demons.search.kept`)."""
        self.device = resolve_device(device)
        self.evaluator = Evaluator(net, self.device, backend)
        self.puct = puct or PuctConfig.for_device(self.device)
        self.time_policy = time_policy
        self.clock = clock
        self.config: NetConfig = net.cfg
        self._cond = threading.Condition()
        self._pending: list[_Job] = []  # guarded by _cond
        self._driving = False  # guarded by _cond: one thread runs steps at a time
        self._active: list[_Job] = []  # touched only by the driving thread
        self._buffers = self.evaluator.new_buffers()  # touched only by the driving thread
        self._spent: list[PlaySearch] = []  # guarded by _cond: trees to free at the next call
        self.reuse_tree = reuse_tree
        self._kept = KeptTrees()
        self._step_costs: collections.deque[tuple[float, float]] = collections.deque(maxlen=16)
        """(when, ms per leaf) of recent full steps: what the next step will probably cost."""

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

    def warmup(self) -> None:
        """Get ready for timed play: kernels set up, and the garbage collector out of the way.

        Runs a few searches and every batch shape one or two searches
        produce, so the first real move does not pay for kernel set-up. Then
        freezes what is alive now (the network, the libraries) out of the
        garbage collector's reach: a full collection otherwise walks all of
        it and can stall a move for 100 ms and more. Front doors call this
        once after loading.
        """
        board = chess.Board()
        self.choose_move(board, nodes=2 * self.puct.batch_size)
        leaf = root_leaf(None, board)
        buffers = self.evaluator.new_buffers()
        for n in range(1, 2 * self.puct.batch_size + 1):  # batch shapes of one or two searches at once
            buffers.clear()
            write_leaves(buffers, [leaf] * n)
            self.evaluator.evaluate(buffers.batch())
        self._step_costs.clear()  # the first calls are slow; time the next ones afresh
        self.choose_move(board, nodes=2 * self.puct.batch_size)
        gc.collect()
        gc.freeze()

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
        depth: int | None = None,
        root_moves: Collection[chess.Move] | None = None,
        wdl: bool = False,
    ) -> tuple[chess.Move, dict[str, float]]:
        """Best move for ``board`` and probabilities over its legal moves.

        The budget is the tightest of ``movetime_ms``, the clock
        (``time_left_ms``, ``increment_ms``, ``moves_to_go``), ``nodes`` and
        ``depth``; with none of them the search runs until ``stop`` is set
        (or 800 visits when there is no ``stop`` either). ``root_moves``
        restricts the search to those moves (UCI ``searchmoves``, lichess-bot's
        ``root_moves``); its illegal entries are ignored, and so is the whole
        list when none of it is legal. The probabilities are plain floats over
        the moves searched, summing to about 1.

        ``wdl``: the :class:`SearchInfo` passed to ``on_info`` carries W/D/L
        (:func:`search_wdl`). It costs one more network call, on the root;
        and a single legal move is then searched (its root evaluated) rather
        than answered at once, so its value is the network's, not a
        placeholder 0.

        :raises ValueError: the game is already over in ``board``.
        """
        start = self.clock()
        with self._cond:
            spent, self._spent = self._spent, []
        spent.clear()  # free the last search's tree now, on this move's clock, not after that move's answer
        if board.is_game_over():
            raise ValueError("the game is over in this position; there is no move to make")
        allowed = _legal_subset(board, root_moves)
        candidates = allowed if allowed is not None else list(board.generate_legal_moves())
        if len(candidates) == 1 and not wdl:  # nothing to think about: answer at once
            if on_info is not None:
                on_info(SearchInfo(0, 0, 0, (self.clock() - start) * 1000, 0.0, [candidates[0]]))
            return candidates[0], {candidates[0].uci(): 1.0}
        deadline = None
        if time_left_ms is not None:
            deadline = self.time_policy.budget_ms(time_left_ms, increment_ms, moves_to_go)
        if movetime_ms is not None:
            deadline = movetime_ms if deadline is None else min(deadline, movetime_ms)
        if deadline is None and nodes is None and depth is None and stop is None:
            nodes = 800
        self.evaluator.warm_thread()  # whichever thread drives a step must not pay its first-call set-up then
        search = puct_search(board, self.puct, allowed)
        if self.reuse_tree and allowed is None:
            self._kept.continue_tree(search, board)
        job = _Job(search, start, deadline, nodes, depth, stop, on_info,
                   info_interval_ms, wdl_root=board.copy(stack=False) if wdl else None, last_info=start)
        self._run(job)
        result = search.result()
        probs = {m.uci(): float(p) for m, p in zip(result.moves, result.policy)}
        spent = self._kept.keep(search, board) if self.reuse_tree else [search]
        with self._cond:
            self._spent.extend(spent)
        return result.move, probs

    # -- the shared search loop --------------------------------------------

    def _run(self, job: _Job) -> None:
        """Drive steps (ours and everyone's) until ``job`` is finished."""
        with self._cond:
            self._pending.append(job)
        while True:
            with self._cond:
                while self._driving and not job.finished:
                    self._cond.wait()
                if job.finished:
                    break
                self._driving = True
                self._active.extend(self._pending)
                self._pending.clear()
            try:
                self._step()
            except BaseException as e:  # noqa: BLE001 - every caller of this step gets the error
                for j in self._active:
                    j.error, j.finished = e, True
                self._active.clear()
            finally:
                with self._cond:
                    self._driving = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error

    def _step(self) -> None:
        """One batch: leaves from every active search, one network call, then bookkeeping."""
        wanting = [job for job in self._active if job.wdl_root is not None]
        if wanting:  # here, on the driving thread (a backend serves one call at a time), and off the step's clock
            for job, head in zip(wanting, self.evaluator.head_wdl([job.wdl_root for job in wanting])):
                job.head_wdl, job.wdl_root = head, None
        nodes_before = [job.search.nodes for job in self._active]
        t0 = self.clock()
        leaves = run_step([job.search for job in self._active], self.evaluator, self._buffers)
        now = self.clock()
        if leaves >= 4:  # a root-only step is no guide to the next full one
            self._step_costs.append((now, (now - t0) * 1000 / leaves))
        # The next step gathers up to a full batch from every search still running.
        next_step_ms = self._ms_per_leaf(now) * self.puct.batch_size * len(self._active)
        still: list[_Job] = []
        for job, before in zip(self._active, nodes_before):
            elapsed = (now - job.start) * 1000
            job.idle_steps = job.idle_steps + 1 if job.search.nodes == before else 0
            if self._should_stop(job, elapsed, next_step_ms):
                if job.on_info is not None:
                    job.on_info(_info(job, elapsed))
                with self._cond:
                    job.finished = True
            else:
                if job.on_info is not None and (now - job.last_info) * 1000 >= job.info_interval_ms:
                    job.last_info = now
                    job.on_info(_info(job, elapsed))
                still.append(job)
        self._active[:] = still

    def _ms_per_leaf(self, now: float) -> float:
        """A cautious estimate of a step's cost per leaf: the upper quartile of the last few steps.

        A quartile rather than the mean so that one stalled step (the
        machine was busy) does not cut the next searches short; samples
        older than ``_COST_MEMORY_S`` are forgotten, and every timed search
        takes one step past its root whatever this says (``_should_stop``),
        so a slow spell's estimate is timed again at once rather than
        outliving it. No recent sample: 0, try a step and see.
        """
        recent = sorted(c for t, c in self._step_costs if now - t < _COST_MEMORY_S)
        return recent[(3 * (len(recent) - 1)) // 4] if recent else 0.0

    def _should_stop(self, job: _Job, elapsed_ms: float, next_step_ms: float) -> bool:
        """A search held to a time or a depth also stops once it has settled: ``_SETTLED_STEPS`` steps
        running, every descent ended at a game's end, so the tree grew by nothing and its time would go to
        revisiting those ends (one waiting for ``stop`` alone waits, as UCI's ``go infinite`` must)."""
        search = job.search
        if not search.started:
            return False
        if search.done or (job.stop is not None and job.stop.is_set()):
            return True
        if job.idle_steps >= _SETTLED_STEPS and (job.deadline_ms is not None or job.depth is not None):
            return True
        if job.nodes is not None and search.visits >= job.nodes:
            return True
        if job.depth is not None and search.max_depth >= job.depth:
            return True
        if job.deadline_ms is not None:
            if search.nodes <= 1:  # this move's network calls, a kept tree's not counted
                # Only its root so far: a forecast alone must not end it here. A stale one (a stall, a first
                # call's set-up) would end every search at its root, where no full step is timed to correct
                # it: a whole match played on the bare policy. One step over, as Lc0 risks every batch.
                return elapsed_ms >= job.deadline_ms
            return elapsed_ms + next_step_ms >= job.deadline_ms  # the next step would probably end past it
        return False


def _legal_subset(board: chess.Board, root_moves: Collection[chess.Move] | None) -> list[chess.Move] | None:
    """The legal moves among ``root_moves`` (None: no restriction, or none of them legal)."""
    if root_moves is None:
        return None
    wanted = set(root_moves)
    legal = [m for m in board.legal_moves if m in wanted]
    if not legal:
        logger.warning("none of the %d root moves given is legal here; searching every move", len(root_moves))
        return None
    return legal


def _info(job: _Job, elapsed_ms: float) -> SearchInfo:
    search = job.search
    result = search.result()
    return SearchInfo(
        nodes=search.nodes,
        visits=search.visits,
        depth=search.max_depth,
        elapsed_ms=elapsed_ms,
        value=result.value,
        pv=search.principal_variation() or [result.move],  # before any visit: the move it would play
        wdl=None if job.head_wdl is None else search_wdl(result.value, job.head_wdl),
    )


def search_wdl(value: float, head: tuple[float, float, float]) -> tuple[float, float, float]:
    """W/D/L for a search value (W - L, side to move's view) and the network's W/D/L at the root.

    The search backs up W - L only, so it is the score's source: W - L
    is ``value`` exactly, and the W/D/L agrees with the score in sign. The
    draw share is the root's own head output, capped at ``1 - |value|``
    (where a decided search leaves no room for draws):
    ``D = min(D_head, 1 - |value|)``, ``W = (1 + value - D) / 2``,
    ``L = (1 - value - D) / 2``. Lc0 backs up D through the tree instead;
    that would need the search to carry it.
    """
    v = max(-1.0, min(1.0, float(value)))
    draw = max(0.0, min(float(head[1]), 1.0 - abs(v)))
    return (1.0 + v - draw) / 2, draw, (1.0 - v - draw) / 2
