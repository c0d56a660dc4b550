"""How a self-play game ends and what it leaves: :func:`game_over`, :class:`GameRecord`, :func:`rescore`.

A finished game is a :class:`GameRecord` of compact arrays: about 100 bytes
per position plus the sparse policy. Both implementations build the same
record and apply :func:`rescore` to it.
"""

from __future__ import annotations

import dataclasses

import chess
import numpy as np

from l4demons.rescore import rescored_results
from l4demons.selfplay.config import SelfPlayConfig


@dataclasses.dataclass
class GameRecord:
    """One finished self-play game, compact. Index i is the i-th position played."""

    positions: np.ndarray
    """[n] of encoding.POSITION_DTYPE."""
    policy_offsets: np.ndarray
    """[n + 1] int32: position i's policy is entries offsets[i]:offsets[i+1]."""
    policy_indices: np.ndarray
    """[total] uint16 policy indices (all legal moves)."""
    policy_probs: np.ndarray
    """[total] float16 improved-policy probabilities."""
    full_search: np.ndarray
    """[n] bool: the policy came from a full search (a policy target)."""
    values: np.ndarray
    """[n] float16 search value, side to move's view."""
    results: np.ndarray
    """[n] int8 game result for the side to move: 1 win, 0 draw, -1 loss."""
    moves: list[str] = dataclasses.field(default_factory=list)
    """The moves played, in UCI notation (for PGN export and checks; not kept in replay)."""
    termination: str = ""
    """checkmate, stalemate, repetition, fifty_moves, insufficient, resign, adjudicated_draw, max_plies..."""
    false_resign: bool = False
    """A played-out game in which a side that would have resigned did not lose."""
    would_resign: bool = False
    played_on: int = 0
    """Positions searched after the material rule decided the game (its last ``played_on``; 0 without play-on)."""
    rescored: bool = False
    """The results are a known win's, not the game's own (``SelfPlayConfig.rescore_known_wins``)."""

    def __len__(self) -> int:
        return len(self.positions)


def game_over(board: chess.Board) -> tuple[str, int] | None:
    """(termination, result for White: 1/0/-1) when the rules end the game, else None."""
    if not any(board.generate_legal_moves()):
        if board.is_check():
            return "checkmate", -1 if board.turn == chess.WHITE else 1
        return "stalemate", 0
    if board.is_insufficient_material():
        return "insufficient", 0
    if board.halfmove_clock >= 100:
        return "fifty_moves", 0
    if board.halfmove_clock >= 8 and board.is_repetition(3):
        return "repetition", 0
    return None



def rescore(rec: GameRecord, cfg: SelfPlayConfig) -> GameRecord:
    """``rec`` with a known win's results where ``cfg`` asks for them (l4demons.rescore), else ``rec`` itself."""
    if not cfg.rescore_known_wins or (results := rescored_results(rec.positions, rec.results)) is None:
        return rec
    return dataclasses.replace(rec, results=results, rescored=True)

