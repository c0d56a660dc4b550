"""PUCT search for play: node or time budget, best move so far at any moment.

Leaves are collected in batches with virtual loss (each pending visit counts
as a loss for the side that chose it) so one network call serves several
leaves of the same tree, as Lc0 does. First-play urgency for unvisited
moves is the parent's value minus a reduction. A mate at once from the root
ends the search at its first call; inside the tree a position whose side to
move can mate at once is a won end (:func:`~l4demons.search.tree.search_end_value`).
"""

from __future__ import annotations

import dataclasses
import math

import chess
import numpy as np

from l4demons.search.tree import Leaf, Node, SearchResult, backup, make_leaf_or_terminal, mating_moves, root_leaf


@dataclasses.dataclass(frozen=True)
class PuctConfig:
    c_puct: float = 1.75
    """Exploration weight of the prior."""
    fpu_reduction: float = 0.3
    """Unvisited moves are valued at the parent's value minus this."""
    batch_size: int = 16
    """Leaves gathered per network call (virtual loss keeps them apart); on a CPU :data:`CPU_BATCH_SIZE`."""
    policy_temp: float = 1.0
    """Priors are the softmax of the policy logits divided by this (Lc0's policy softmax temperature)."""

    @classmethod
    def for_device(cls, device: str, **settings: float | int) -> PuctConfig:
        """The play defaults on ``device`` (``cpu``, ``cuda``, ``cuda:1``...), ``settings`` over them.

        A CPU takes :data:`CPU_BATCH_SIZE` leaves a call: a network call there costs in proportion to its
        batch, so a smaller one loses few nodes and spreads the virtual loss less. A GPU's call costs about
        the same for 8 leaves as for 16, so it keeps the larger batch.
        """
        base = cls(batch_size=CPU_BATCH_SIZE) if device.split(":")[0] == "cpu" else cls()
        return dataclasses.replace(base, **settings)


CPU_BATCH_SIZE = 8
"""Leaves per network call at play on a CPU. Against 16, at 0.1 s a move on one core: +44 Elo over 300 games
on two nets (README, "Search at play")."""


class PuctSearch:
    """A growing tree for one position; ``collect``/``deliver`` until told to stop."""

    def __init__(self, board: chess.Board, cfg: PuctConfig = PuctConfig()) -> None:
        self.board = board
        self.cfg = cfg
        self.root: Node | None = None
        self.done = False
        self.nodes = 0
        self.max_depth = 0

    @property
    def visits(self) -> int:
        """Simulations finished so far (terminal hits included)."""
        return 0 if self.root is None or not self.root.expanded else int(self.root.visits.sum())

    def collect(self, max_leaves: int | None = None) -> list[Leaf]:
        if self.root is None:
            leaf = root_leaf(self, self.board)
            self.root = leaf.node
            return [leaf]
        want = self.cfg.batch_size if max_leaves is None else max_leaves
        leaves: list[Leaf] = []
        for _ in range(2 * want):  # terminal hits consume tries but no network call
            if len(leaves) >= want:
                break
            leaf, collided = self._descend()
            if collided:
                break
            if leaf is not None:
                leaves.append(leaf)
        return leaves

    def deliver(self, leaf: Leaf, logits: np.ndarray, value: float) -> None:
        leaf.node.expand(leaf.moves, leaf.indices, logits, value, self.cfg.policy_temp)
        self.nodes += 1
        if leaf.path:
            backup(leaf.path, value, virtual=True)
        elif len(leaf.moves) == 1:
            self.done = True  # a forced move needs no search
        else:
            self.done = self._visit_mates()

    def _visit_mates(self) -> bool:
        """A mate at once from the root: each mating move visited once (a won end); True if there was one."""
        root = self.root
        mates = mating_moves(self.board, root.moves)
        for a in mates:
            root.children[a] = Node.terminal_node(-1.0)
            root.visits[a] = 1.0
            root.value_sum[a] = 1.0
        return bool(mates)

    def _select(self, node: Node) -> int:
        visits = node.visits
        total = visits.sum()
        q = np.where(visits > 0, node.q(), node.value - self.cfg.fpu_reduction)
        u = self.cfg.c_puct * node.prior * (math.sqrt(total) if total > 0 else 1.0) / (1.0 + visits)
        return int(np.argmax(q + u))

    def _descend(self) -> tuple[Leaf | None, bool]:
        board = self.board
        node = self.root
        path: list[tuple[Node, int]] = []
        leaf, collided = None, False
        while True:
            a = self._select(node)
            node.visits[a] += 1.0  # virtual loss, made real or undone below
            node.value_sum[a] -= 1.0
            path.append((node, a))
            board.push(node.moves[a])
            child = node.children[a]
            if child is None:
                child, leaf = make_leaf_or_terminal(self, board, path)
                node.children[a] = child
                break
            if not child.expanded:
                break
            node = child
        self.max_depth = max(self.max_depth, len(path))
        for _ in path:
            board.pop()
        if child.terminal:
            backup(path, child.value, virtual=True)
        elif leaf is None:  # collided with a leaf still waiting for the network
            collided = True
            for n, a in path:
                n.visits[a] -= 1.0
                n.value_sum[a] += 1.0
        return leaf, collided

    def principal_variation(self, max_len: int = 20) -> list[chess.Move]:
        pv, node = [], self.root
        while node is not None and node.expanded and node.visits.sum() > 0 and len(pv) < max_len:
            a = int(np.argmax(node.visits))
            pv.append(node.moves[a])
            node = node.children[a]
        return pv

    def result(self) -> SearchResult:
        """Best move so far: most visited, ties broken by Q, then prior."""
        root = self.root
        if root.visits.sum() == 0:
            policy = root.prior
            action = int(np.argmax(policy))
            value = root.value
        else:
            q = root.q()
            action = int(np.lexsort((root.prior, q, root.visits))[-1])
            policy = root.visits / root.visits.sum()
            value = float(q[action])
        return SearchResult.from_root(root, action, policy, value, self.nodes)
