"""Gumbel AlphaZero search (Danihelka et al., 2022), batched per round.

Self-play can afford only a few simulations per move on a CPU. Gumbel
search still improves the policy with as few as 8: at the root it samples
the top-m actions without replacement (Gumbel-top-k), spends the budget on
them by sequential halving, and trains on the completed-Q policy
``softmax(logits + sigma(completed Q))`` over all legal moves. Interior nodes
use the paper's deterministic selection. Constants follow DeepMind's mctx.

A mate at once is never left to the Gumbel draw: when the root has one,
only the mating moves are considered (each visit a won end, no network
call) and the policy target is the mate itself; inside the tree a position
whose side to move can mate at once is a won end
(:func:`~l4demons.search.tree.search_end_value`). So games end by mate, and
the policy learns the mates it missed.

Each sequential-halving round visits every surviving root action once, in
different subtrees, so a round is one batch of leaves: one network call
sees ``m`` leaves of this search (and those of every other game in flight).
"""

from __future__ import annotations

import dataclasses
import math

import chess
import numpy as np

from l4demons.search.noise import NoiseStream
from l4demons.search.tree import Leaf, Node, SearchResult, backup, make_leaf_or_terminal, mating_moves, root_leaf


@dataclasses.dataclass(frozen=True)
class GumbelConfig:
    simulations: int = 32
    """Network evaluations per move (the root's included)."""
    max_considered: int = 16
    """Root actions sampled for sequential halving (m)."""
    c_visit: float = 50.0
    """sigma's visit offset (mctx maxvisit_init)."""
    c_scale: float = 0.1
    """sigma's value scale (mctx value_scale)."""
    gumbel_scale: float = 1.0
    """1 samples moves (self-play variety); 0 plays the best move."""


def halving_schedule(m: int, n: int) -> list[tuple[int, int]]:
    """Rounds of sequential halving as (visit level, actions this round).

    Mirrors mctx's ``get_sequence_of_considered_visits`` (``n`` visits over
    ``m`` actions), grouped into rounds whose visits can run as one batch.
    """
    if n <= 0:
        return []
    if m <= 1:
        return [(level, 1) for level in range(n)]
    log2m = math.ceil(math.log2(m))
    rounds: list[tuple[int, int]] = []
    level, considered, total = 0, m, 0
    while total < n:
        extra = max(1, int(n / (log2m * considered)))
        for _ in range(extra):
            take = min(considered, n - total)
            if take <= 0:
                break
            rounds.append((level, take))
            total += take
            level += 1
        considered = max(2, considered // 2)
    return rounds


def mixed_value(node: Node, q: np.ndarray) -> float:
    """The network's value mixed with the prior-weighted Q of visited actions (v_mix)."""
    visited = node.visits > 0
    total = node.visits.sum()
    if total == 0:
        return node.value
    prior = np.maximum(node.prior[visited], 1e-30)
    return (node.value + total * float((prior * q[visited]).sum() / prior.sum())) / (total + 1)


def completed_sigma(node: Node, cfg: GumbelConfig) -> np.ndarray:
    """sigma(completed Q): unvisited actions take the mixed value, then min-max rescale."""
    visits = node.visits
    q = node.q()
    completed = np.where(visits > 0, q, mixed_value(node, q))
    lo, hi = completed.min(), completed.max()
    completed = (completed - lo) / max(hi - lo, 1e-8)
    return (cfg.c_visit + visits.max()) * cfg.c_scale * completed


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class GumbelSearch:
    """One move's search for one game; see the module docstring."""

    def __init__(
        self,
        board: chess.Board,
        cfg: GumbelConfig,
        rng: np.random.Generator | NoiseStream,
        simulations: int | None = None,
    ) -> None:
        self.board = board
        self.cfg = cfg
        self.rng = rng
        self.simulations = cfg.simulations if simulations is None else simulations
        self.root: Node | None = None
        self.done = False
        self.nodes = 0
        self._rounds: list[tuple[int, int]] = []
        self._gumbel: np.ndarray | None = None
        self._considered: np.ndarray | None = None
        self._mates: list[int] = []

    # -- the batched protocol -------------------------------------------------
    def collect(self) -> list[Leaf]:
        if self.root is None:
            leaf = root_leaf(self, self.board)
            self.root = leaf.node
            return [leaf]
        leaves: list[Leaf] = []
        while not leaves and self._rounds:
            level, count = self._rounds.pop(0)
            for a in self._round_actions(level, count):
                leaf = self._simulate(int(a))
                if leaf is not None:
                    leaves.append(leaf)
        if not leaves and not self._rounds:
            self.done = True
        return leaves

    def deliver(self, leaf: Leaf, logits: np.ndarray, value: float) -> None:
        leaf.node.expand(leaf.moves, leaf.indices, logits, value)
        self.nodes += 1
        if leaf.path:
            backup(leaf.path, value)
            return
        n = len(leaf.moves)  # the root: draw the Gumbels and plan the rounds
        self._gumbel = self.rng.gumbel(size=n) * self.cfg.gumbel_scale
        self._mates = mating_moves(self.board, leaf.moves)
        if self._mates:  # a mate at once: the budget goes to the mating moves
            self._considered = np.asarray(self._mates)
        else:
            self._considered = np.argsort(-(self._gumbel + self.root.logits), kind="stable")[:self.cfg.max_considered]
        self._rounds = halving_schedule(len(self._considered), self.simulations - 1) if n > 1 else []

    # -- internals ------------------------------------------------------------
    def _root_scores(self) -> np.ndarray:
        return self._gumbel + self.root.logits + completed_sigma(self.root, self.cfg)

    def _round_actions(self, level: int, count: int) -> list[int]:
        scores = self._root_scores()
        visits = self.root.visits
        pool = [a for a in self._considered if visits[a] == level]
        pool.sort(key=lambda a: -scores[a])
        return pool[:count]

    def _select_interior(self, node: Node) -> int:
        probs = _softmax(node.logits + completed_sigma(node, self.cfg))
        return int(np.argmax(probs - node.visits / (1.0 + node.visits.sum())))

    def _simulate(self, action: int) -> Leaf | None:
        board = self.board
        node, a = self.root, action
        path = [(node, a)]
        board.push(node.moves[a])
        child = node.children[a]
        while child is not None and child.expanded:
            node, a = child, self._select_interior(child)
            path.append((node, a))
            board.push(node.moves[a])
            child = node.children[a]
        leaf = None
        if child is None:
            child, leaf = make_leaf_or_terminal(self, board, path)
            node.children[a] = child
        for _ in path:
            board.pop()
        if child.terminal:
            backup(path, child.value)
        # A pending child (another leaf of this round) cannot occur: a round's
        # simulations start from distinct root actions.
        return leaf

    def result(self) -> SearchResult:
        """The move to play and the improved policy; call when ``done``."""
        root = self.root
        sigma = completed_sigma(root, self.cfg)
        considered = self._considered
        top = root.visits[considered].max()
        best = [a for a in considered if root.visits[a] == top]
        scores = self._gumbel + root.logits + sigma
        action = int(max(best, key=lambda a: scores[a]))
        policy = _softmax(root.logits + sigma)
        if self._mates:  # a proven win: the target is the mate, however little the net thought of it
            policy = np.zeros_like(policy)
            policy[self._mates] = 1.0 / len(self._mates)
        value = mixed_value(root, root.q())
        return SearchResult.from_root(root, action, policy, value, self.nodes)
