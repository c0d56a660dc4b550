"""Search tree nodes, leaves waiting for the network, and value backup.

Values are expected scores in [-1, 1] from the point of view of the side to
move at the node that holds them; edge statistics live on the parent (as
Lc0's edges do), from the parent's point of view.
"""

from __future__ import annotations

import dataclasses

import chess
import numpy as np

from l4demons.encoding import encode_position, legal_moves_and_indices


class Node:
    """One position in the tree. Created pending, expanded when evaluated."""

    __slots__ = ("moves", "indices", "logits", "prior", "visits", "value_sum", "children", "value", "terminal")

    def __init__(self) -> None:
        self.moves: list[chess.Move] = []
        self.indices: list[int] = []
        self.logits: np.ndarray | None = None  # None while pending
        self.prior: np.ndarray | None = None
        self.visits: np.ndarray | None = None
        self.value_sum: np.ndarray | None = None
        self.children: list[Node | None] = []
        self.value = 0.0  # the network's value here (or the terminal value)
        self.terminal = False

    @property
    def expanded(self) -> bool:
        return self.logits is not None

    @classmethod
    def terminal_node(cls, value: float) -> Node:
        node = cls()
        node.terminal = True
        node.value = value
        return node

    def expand(self, moves: list[chess.Move], indices: list[int], logits: np.ndarray, value: float,
               temp: float = 1.0) -> None:
        """``temp``: the priors are ``softmax(logits / temp)``; ``self.logits`` stays the network's."""
        n = len(moves)
        self.moves, self.indices = moves, indices
        self.logits = logits.astype(np.float64)
        p = np.exp((self.logits - self.logits.max()) / temp)
        self.prior = p / p.sum()
        self.visits = np.zeros(n)
        self.value_sum = np.zeros(n)
        self.children = [None] * n
        self.value = float(value)

    def q(self) -> np.ndarray:
        """Mean value of each edge from this node's point of view (0 where unvisited)."""
        return np.divide(self.value_sum, self.visits, out=np.zeros_like(self.value_sum), where=self.visits > 0)


@dataclasses.dataclass
class Leaf:
    """A position the network must evaluate before the search can go on."""

    owner: object
    """The search that asked; results go back through ``owner.deliver``."""
    path: list[tuple[Node, int]]
    """Edges from the root down to ``node``."""
    node: Node
    record: np.ndarray
    """The position, packed (encoding.POSITION_DTYPE)."""
    moves: list[chess.Move]
    indices: list[int]


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What a finished search recommends, and what self-play records."""

    move: chess.Move
    moves: list[chess.Move]
    """Legal moves of the root."""
    indices: np.ndarray
    """Their policy indices."""
    policy: np.ndarray
    """Improved policy over ``moves`` (sums to 1): training target and move_probs."""
    value: float
    """Search value of the root from the side to move's view."""
    nodes: int
    """Network evaluations this search spent."""

    @classmethod
    def from_root(cls, root: Node, action: int, policy: np.ndarray, value: float, nodes: int) -> SearchResult:
        return cls(
            move=root.moves[action],
            moves=root.moves,
            indices=np.asarray(root.indices, dtype=np.int32),
            policy=policy.astype(np.float32),
            value=float(value),
            nodes=nodes,
        )


def terminal_value(board: chess.Board, has_moves: bool, in_search: bool = True) -> float | None:
    """Value for the side to move if the game is over here, else None.

    Inside the search a single repetition counts as a draw (Lc0 does the
    same): the side that could avoid it would, and the search stays small.
    """
    if not has_moves:
        return -1.0 if board.is_check() else 0.0
    if board.halfmove_clock >= 100 or board.is_insufficient_material():
        return 0.0
    if board.halfmove_clock >= 4 and board.is_repetition(2 if in_search else 3):
        return 0.0
    return None


def mating_moves(board: chess.Board, moves: list[chess.Move]) -> list[int]:
    """Indices of the ``moves`` (legal in ``board``) that checkmate at once."""
    found = []
    for i, move in enumerate(moves):
        if board.gives_check(move):
            board.push(move)
            if board.is_checkmate():
                found.append(i)
            board.pop()
    return found


def search_end_value(board: chess.Board, moves: list[chess.Move]) -> float | None:
    """:func:`terminal_value` inside a search, where a mate at once for the side to move is a won end too.

    The network is not asked there, and the move that allowed the mate is
    seen as lost from its own node: a mate in two is a two-ply search, and
    a move that hangs a mate in one is refuted at its first visit.
    """
    tv = terminal_value(board, bool(moves))
    if tv is None and mating_moves(board, moves):
        return 1.0
    return tv


def backup(path: list[tuple[Node, int]], value: float, virtual: bool = False) -> None:
    """Propagate a leaf's value (leaf's side to move) up ``path``.

    With ``virtual`` the visit was already counted as a virtual loss on the
    way down (PUCT batching): undo the loss and add the real value.
    """
    v = value
    for node, a in reversed(path):
        v = -v
        if virtual:
            node.value_sum[a] += v + 1.0
        else:
            node.visits[a] += 1.0
            node.value_sum[a] += v


def make_leaf_or_terminal(owner: object, board: chess.Board, path: list[tuple[Node, int]]) -> tuple[Node, Leaf | None]:
    """Create the child at the end of ``path`` for ``board`` (already pushed).

    Returns the new node and a leaf to evaluate, or (terminal node, None).
    """
    moves, indices = legal_moves_and_indices(board)
    tv = search_end_value(board, moves)
    if tv is not None:
        return Node.terminal_node(tv), None
    node = Node()
    return node, Leaf(owner, path, node, encode_position(board), moves, indices)


def root_leaf(owner: object, board: chess.Board) -> Leaf:
    """The leaf that evaluates a search's root (the game must not be over)."""
    moves, indices = legal_moves_and_indices(board)
    return Leaf(owner, [], Node(), encode_position(board), moves, indices)
