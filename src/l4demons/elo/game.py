"""One game between two players: what to play (a :class:`GameJob`), how it is played, its record.

A game starts from an opening and ends by the rules (checkmate, stalemate,
insufficient material), by a draw either side may claim (threefold
repetition, fifty moves: we claim for them), or at ``max_plies`` where it
is adjudicated a draw (or, if asked, a win on material). A run's stop cuts
it off before a move with :class:`GamesStopped`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import NamedTuple

import chess
import chess.pgn

from l4demons.elo.errors import EloError
from l4demons.elo.openings import Opening
from l4demons.elo.players import Player, PlayerSpec, material_balance


DEFAULT_MAX_PLIES = 400
"""Plies (opening included) after which a game is adjudicated a draw."""


class GamesStopped(EloError):
    """The run was asked to stop: this game was cut off (or never started) and has no result."""


@dataclasses.dataclass(frozen=True)
class GameJob:
    """One game to play, as sent to a worker."""

    index: int
    a: PlayerSpec
    b: PlayerSpec
    a_white: bool
    opening: Opening
    max_plies: int
    seed: int
    event: str
    adjudicate_material: int = 0
    """At ``max_plies``, a lead of this many pawns wins instead of a draw (0: always a draw)."""


@dataclasses.dataclass(frozen=True)
class Thinking:
    """What one side spent on its own moves (book moves excluded): the first thing to check when a
    player at a fixed time per move scores differently from one run to the next."""

    moves: int = 0
    """Moves the player chose."""
    nodes: int = 0
    """Nodes its searches reported (:attr:`~l4demons.elo.players.Player.last_nodes`), summed."""
    seconds: float = 0.0
    """Wall time its ``choose`` calls took, summed."""

    def __add__(self, other: Thinking) -> Thinking:
        return Thinking(self.moves + other.moves, self.nodes + other.nodes, self.seconds + other.seconds)

    @property
    def nodes_per_move(self) -> float:
        return self.nodes / self.moves if self.moves else 0.0

    @property
    def nodes_per_second(self) -> float:
        return self.nodes / self.seconds if self.seconds > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class GameRecord:
    """A finished game."""

    index: int
    """Position in the match schedule."""
    a_white: bool
    """Whether player A had white."""
    result: str
    """``1-0``, ``0-1`` or ``1/2-1/2``."""
    termination: str
    """Why it ended, e.g. ``checkmate``, ``threefold repetition``, ``adjudicated at 400 plies``."""
    plies: int
    """Plies played, opening included."""
    seconds: float
    """Wall time the game took in its worker."""
    pgn: str
    """The game as PGN text, with headers."""
    thinking: tuple[Thinking, Thinking] = (Thinking(), Thinking())
    """What player A and player B (in that order) spent on their moves."""

    @property
    def score_a(self) -> float:
        """Player A's points from this game: 1, 0.5 or 0."""
        if self.result == "1/2-1/2":
            return 0.5
        return 1.0 if (self.result == "1-0") == self.a_white else 0.0


class PlayedGame(NamedTuple):
    """What :func:`play_game` returns."""

    result: str
    termination: str
    game: chess.pgn.Game
    thinking: tuple[Thinking, Thinking]
    """What white and black (in that order) spent on their moves."""


def play_game(white: Player, black: Player, opening: Opening, max_plies: int = DEFAULT_MAX_PLIES,
              headers: dict[str, str] | None = None, adjudicate_material: int = 0,
              should_stop: Callable[[], bool] | None = None) -> PlayedGame:
    """Play one game.

    A game still going at ``max_plies`` is a draw, or with
    ``adjudicate_material`` a win for a side that many pawns ahead. Each
    move after the book carries a comment of what it cost, cutechess-style:
    ``{0.10s}``, or ``{152 nodes 0.10s}`` from a player that reports nodes.

    :raises GamesStopped: ``should_stop()`` said so before a move.
    """
    board = opening.board()
    book_plies = len(board.move_stack)
    termination = ""
    spent: list[tuple[chess.Color, int | None, float]] = []
    while True:
        outcome = board.outcome()
        if outcome is not None:
            result, termination = outcome.result(), outcome.termination.name.lower().replace("_", " ")
            break
        if board.is_repetition(3):
            result, termination = "1/2-1/2", "threefold repetition"
            break
        if board.halfmove_clock >= 100:
            result, termination = "1/2-1/2", "fifty moves"
            break
        if len(board.move_stack) >= max_plies:
            lead = material_balance(board, chess.WHITE)
            if adjudicate_material and abs(lead) >= adjudicate_material:
                result = "1-0" if lead > 0 else "0-1"
                termination = f"adjudicated on material at {max_plies} plies"
            else:
                result, termination = "1/2-1/2", f"adjudicated at {max_plies} plies"
            break
        if should_stop is not None and should_stop():
            raise GamesStopped(f"game stopped at ply {len(board.move_stack)} of {white.name} vs {black.name}")
        player = white if board.turn == chess.WHITE else black
        started = time.perf_counter()
        move = player.choose(board)
        spent.append((board.turn, player.last_nodes, time.perf_counter() - started))
        if move not in board.legal_moves:
            raise chess.IllegalMoveError(f"{player.name} played illegal {move} in {board.fen()}")
        board.push(move)
    game = chess.pgn.Game.from_board(board)
    game.headers.update(headers or {})
    game.headers.update({
        "White": white.name, "Black": black.name, "Result": result,
        "Opening": opening.name, "Termination": termination, "PlyCount": str(len(board.move_stack)),
    })
    node: chess.pgn.GameNode = game
    for _ in range(book_plies):
        node = node.variations[0]
    if book_plies:
        node.comment = "book"
    sides = [Thinking(), Thinking()]  # white, black
    for turn, nodes, seconds in spent:
        node = node.variations[0]
        node.comment = f"{nodes} nodes {seconds:.2f}s" if nodes is not None else f"{seconds:.2f}s"
        sides[turn == chess.BLACK] += Thinking(1, nodes or 0, seconds)
    return PlayedGame(result, termination, game, (sides[0], sides[1]))
