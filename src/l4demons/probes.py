"""Probes that catch a broken learning signal: does the net see material, from both sides?

A net trained on games that mostly end on a material lead must, within
minutes, value being a piece up over being a piece down and put policy mass
on a piece it can take for free. These probes ask exactly that, on fixed
positions, so a sign error in the encoding, the targets or the loss shows
as a number instead of as an hour of training that goes nowhere.

- :func:`material_probe`: the value of a position with one side a piece
  short, against the same position with the other side short, with either
  side to move. A healthy net prefers its own material in all four.
- :func:`capture_probe`: the policy's mass on a free capture.
- :func:`mate_probe`: the share of held-out mate-in-1 and mate-in-2
  puzzles (``data/mate_puzzles.json``, built with Stockfish by
  ``bench/build_mates.py`` from positions of its own games) whose first
  move the bot plays with a fixed number of search nodes.
- :func:`probe` runs the material and capture probes on a net;
  ``bench/probes.py`` runs them over a hub's history.
- :func:`material_chunk`: positions labelled the way the material rule
  labels games (the sign of the material balance for the side to move),
  to check that the network and the learner can take that signal in.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import chess
import numpy as np
import torch

from l4demons.encoding import (POSITION_DTYPE, encode_position, encode_positions, legal_moves_and_indices, material_balance,
                               planes_from_positions)
from l4demons.replay import ReplayChunk

START = chess.STARTING_FEN
MISSING = {"queen": "d", "rook": "a", "knight": "b"}
"""Which piece each material probe removes (its file on the back rank)."""

FREE_CAPTURES = (
    # (position, the captures that win a piece for nothing), both sides to move.
    ("rnbqkb1r/pppppppp/8/8/4n3/3P4/PPP1PPPP/RNBQKBNR w KQkq - 0 1", ("d3e4",)),
    ("rnb1kbnr/pppp1ppp/8/4p1q1/3P4/8/PPP1PPPP/RNBQKBNR w KQkq - 0 1", ("c1g5",)),
    ("r1bqkbnr/pppppppp/8/8/3n4/2P5/PP1PPPPP/RNBQKBNR w KQkq - 0 1", ("c3d4",)),
    ("rnbqkbnr/pppppppp/2N5/8/8/8/PPPPPPPP/R1BQKBNR b KQkq - 0 1", ("b7c6", "d7c6")),
    ("rnbqkbnr/pppp1ppp/4p3/3Q4/8/8/PPPPPPPP/RNB1KBNR b KQkq - 0 1", ("e6d5",)),
)


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Win-minus-loss values (side to move's view) and policy masses."""

    start: float
    """Value of the start position."""
    ahead: dict[str, float]
    """Piece name -> mean value when the side to move has that piece and the opponent does not."""
    behind: dict[str, float]
    """Piece name -> mean value when the side to move lacks that piece."""
    capture_mass: float
    """Mean policy mass on the free captures of :data:`FREE_CAPTURES`."""
    uniform_mass: float
    """What a uniform policy would put there."""

    @property
    def sees_material(self) -> bool:
        """Ahead beats behind for every piece (both sides to move averaged in)."""
        return all(self.ahead[p] > self.behind[p] for p in self.ahead)

    def summary(self) -> str:
        gaps = ", ".join(f"{p} {self.ahead[p] - self.behind[p]:+.2f}" for p in self.ahead)
        return (f"value gap (ahead - behind): {gaps}; start {self.start:+.2f}; "
                f"free capture mass {self.capture_mass:.2f} (uniform {self.uniform_mass:.2f})")


def _without(piece_file: str, colour: chess.Color, turn: chess.Color) -> chess.Board:
    board = chess.Board(START)
    square = chess.parse_square(piece_file + ("1" if colour == chess.WHITE else "8"))
    board.remove_piece_at(square)
    board.turn = turn
    return board


@torch.no_grad()
def evaluate(net: torch.nn.Module, boards: list[chess.Board]) -> tuple[np.ndarray, np.ndarray]:
    """Policy logits ``[n, 4672]`` and values (win - loss, side to move) ``[n]`` of ``boards``."""
    was_training = net.training
    net.eval()
    planes = torch.from_numpy(planes_from_positions(encode_positions(boards)))
    device = next(net.parameters()).device
    policy, wdl = net(planes.to(device))
    net.train(was_training)
    probs = torch.softmax(wdl.float(), dim=1).cpu().numpy()
    return policy.float().cpu().numpy(), probs[:, 0] - probs[:, 2]


def material_probe(net: torch.nn.Module) -> tuple[float, dict[str, float], dict[str, float]]:
    """(start value, ahead, behind): see :class:`ProbeResult`."""
    boards, keys = [chess.Board(START)], [("start", "")]
    for name, file in MISSING.items():
        for turn in (chess.WHITE, chess.BLACK):
            boards.append(_without(file, not turn, turn))  # the opponent lacks it: ahead
            keys.append(("ahead", name))
            boards.append(_without(file, turn, turn))  # the side to move lacks it: behind
            keys.append(("behind", name))
    _, values = evaluate(net, boards)
    ahead: dict[str, list[float]] = {}
    behind: dict[str, list[float]] = {}
    for (kind, name), v in zip(keys[1:], values[1:]):
        (ahead if kind == "ahead" else behind).setdefault(name, []).append(float(v))
    return float(values[0]), {k: float(np.mean(v)) for k, v in ahead.items()}, \
        {k: float(np.mean(v)) for k, v in behind.items()}


def capture_probe(net: torch.nn.Module) -> tuple[float, float]:
    """(mean policy mass on the free capture, mean uniform mass)."""
    boards = [chess.Board(fen) for fen, _ in FREE_CAPTURES]
    logits, _ = evaluate(net, boards)
    masses, uniform = [], []
    for board, (_, captures), row in zip(boards, FREE_CAPTURES, logits):
        moves, indices = legal_moves_and_indices(board)
        lg = row[indices]
        p = np.exp(lg - lg.max())
        p /= p.sum()
        wanted = [moves.index(chess.Move.from_uci(uci)) for uci in captures]
        masses.append(float(p[wanted].sum()))
        uniform.append(len(wanted) / len(moves))
    return float(np.mean(masses)), float(np.mean(uniform))


def probe(net: torch.nn.Module) -> ProbeResult:
    """Every probe on ``net``."""
    start, ahead, behind = material_probe(net)
    mass, uniform = capture_probe(net)
    return ProbeResult(start, ahead, behind, mass, uniform)


def random_positions(n: int, rng: np.random.Generator) -> list[chess.Board]:
    """Positions of random games, many of them with material off balance."""
    out: list[chess.Board] = []
    while len(out) < n:
        board = chess.Board()
        for _ in range(int(rng.integers(10, 80))):
            moves = list(board.generate_legal_moves())
            if not moves:
                break
            captures = [m for m in moves if board.is_capture(m)]
            pool = captures if captures and rng.random() < 0.5 else moves
            board.push(pool[int(rng.integers(len(pool)))])
        if not board.is_game_over():
            out.append(board.copy(stack=False))
    return out


def material_chunk(boards: list[chess.Board]) -> ReplayChunk:
    """A chunk whose result is the material balance's sign for the side to move (the material rule's label)."""
    n = len(boards)
    positions = np.zeros(n, dtype=POSITION_DTYPE)
    offsets, indices, probs, results = [0], [], [], []
    for i, board in enumerate(boards):
        encode_position(board, positions[i])
        legal, idx = legal_moves_and_indices(board)
        gain = np.array([board.is_capture(m) for m in legal], dtype=np.float32) + 0.05
        indices.extend(idx)
        probs.extend(gain / gain.sum())  # the policy target favours captures
        offsets.append(len(indices))
        lead = material_balance(board) * (1 if board.turn == chess.WHITE else -1)
        results.append(int(np.sign(lead)))
    return ReplayChunk(
        name="material", positions=positions, policy_offsets=np.array(offsets, np.int64),
        policy_indices=np.array(indices, np.uint16), policy_probs=np.array(probs, np.float16),
        full_search=np.ones(n, bool), results=np.array(results, np.int8), values=np.zeros(n, np.float16),
        game_offsets=np.arange(n + 1, dtype=np.int64), validation=np.zeros(n, bool))


@dataclasses.dataclass(frozen=True)
class MateResult:
    """Shares of the held-out mate puzzles solved (the bot's move keeps the forced mate)."""

    mate_in_1: float
    mate_in_2: float
    nodes: int
    puzzles: int
    """Puzzles of each kind tried."""

    def summary(self) -> str:
        return (f"mate in 1 {100 * self.mate_in_1:.0f}%, mate in 2 {100 * self.mate_in_2:.0f}% "
                f"({self.puzzles} each, {self.nodes} nodes)")


def mate_puzzles() -> dict[str, list[dict]]:
    """``{"mate_in_1": [{"fen", "solutions"}...], "mate_in_2": [...]}`` from the package's data."""
    return json.loads(resources.files("l4demons").joinpath("data/mate_puzzles.json").read_text())


def mate_probe(net: torch.nn.Module, nodes: int = 400, limit: int | None = None) -> MateResult:
    """The bot (its play search, ``nodes`` a move) on the first ``limit`` puzzles of each kind (default: all)."""
    from l4demons.bot import Bot

    bot = Bot(net, str(next(net.parameters()).device))
    puzzles = mate_puzzles()
    shares = []
    for kind in ("mate_in_1", "mate_in_2"):
        chosen = puzzles[kind][:limit]
        solved = sum(bot.choose_move(chess.Board(p["fen"]), nodes=nodes)[0].uci() in p["solutions"] for p in chosen)
        shares.append(solved / len(chosen))
    return MateResult(shares[0], shares[1], nodes, len(chosen))
