"""Starting positions for rating games.

Games from the initial position between deterministic players repeat, and
a single line favours whoever likes it. So every match starts from varied,
balanced openings: short random walks through a Polyglot book (Debian's
``gnuchess-book``), each move drawn in proportion to the book's weights,
or, with no book installed, a built-in dozen of main lines. A match plays
each opening twice with colours swapped, which cancels most of the
opening's own bias.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from pathlib import Path

import chess
import chess.polyglot

log = logging.getLogger(__name__)

DEBIAN_BOOK = "/usr/share/games/gnuchess/book.bin"
"""Where Debian's ``gnuchess-book`` package installs its Polyglot book."""


@dataclasses.dataclass(frozen=True)
class Opening:
    """A line of moves from the initial position."""

    name: str
    """Human-readable label for the PGN ``Opening`` header."""
    moves: tuple[str, ...]
    """The moves in UCI notation."""

    def board(self) -> chess.Board:
        """The position after the line.

        :raises chess.IllegalMoveError: a move is illegal (a corrupt line).
        """
        board = chess.Board()
        for uci in self.moves:
            board.push(board.parse_uci(uci))
        return board

    @classmethod
    def from_san(cls, name: str, san: str) -> Opening:
        board = chess.Board()
        return cls(name, tuple(board.push_san(token).uci() for token in san.split()))


BUILTIN_OPENINGS: tuple[Opening, ...] = tuple(
    Opening.from_san(name, san)
    for name, san in (
        ("Ruy Lopez", "e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6"),
        ("Italian Game", "e4 e5 Nf3 Nc6 Bc4 Bc5 c3 Nf6"),
        ("Sicilian, Najdorf", "e4 c5 Nf3 d6 d4 cxd4 Nxd4 Nf6 Nc3 a6"),
        ("Sicilian, Taimanov", "e4 c5 Nf3 e6 d4 cxd4 Nxd4 Nc6"),
        ("French, Classical", "e4 e6 d4 d5 Nc3 Nf6 Bg5 Be7"),
        ("Caro-Kann", "e4 c6 d4 d5 Nc3 dxe4 Nxe4 Bf5"),
        ("Queen's Gambit Declined", "d4 d5 c4 e6 Nc3 Nf6 Bg5 Be7"),
        ("Slav", "d4 d5 c4 c6 Nf3 Nf6 Nc3 dxc4"),
        ("Nimzo-Indian", "d4 Nf6 c4 e6 Nc3 Bb4 e3 O-O"),
        ("King's Indian", "d4 Nf6 c4 g6 Nc3 Bg7 e4 d6"),
        ("English, Symmetrical", "c4 c5 Nc3 Nc6 g3 g6 Bg2 Bg7"),
        ("Reti", "Nf3 d5 g3 Nf6 Bg2 e6 O-O Be7"),
    )
)
"""Twelve well-trodden, roughly level lines, the fallback without a book."""


MAX_OPENINGS = 200
"""Most distinct openings a match draws; longer matches cycle through them.
Drawing many more from the book gets slow (popular lines repeat) and adds
nothing a rating can see."""


def find_book(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The Polyglot book to use: ``path``, ``$L4D_BOOK``, then Debian's; None if absent."""
    for candidate in (path, os.environ.get("L4D_BOOK"), DEBIAN_BOOK):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def book_openings(book: str | os.PathLike[str], count: int, plies: int = 8, seed: int = 0) -> list[Opening]:
    """``count`` distinct lines of up to ``plies`` moves drawn from a Polyglot book.

    Each move is drawn with probability proportional to its book weight, so
    popular (sound) moves dominate. A walk that leaves the book early is
    kept if it has at least half the plies; duplicates (same final
    position) are dropped. May return fewer than ``count`` if the book is
    small.
    """
    rng = random.Random(seed)
    seen: set[object] = set()
    lines: list[Opening] = []
    with chess.polyglot.open_reader(book) as reader:
        for _ in range(count * 20):
            if len(lines) >= count:
                break
            board = chess.Board()
            sans: list[str] = []
            while len(board.move_stack) < plies:
                try:
                    entry = reader.weighted_choice(board, random=rng)
                except IndexError:
                    break
                if entry.move not in board.legal_moves:
                    break
                sans.append(board.san(entry.move))
                board.push(entry.move)
            if len(board.move_stack) < max(1, plies // 2) or board.is_game_over():
                continue
            key = board._transposition_key()
            if key in seen:
                continue
            seen.add(key)
            lines.append(Opening(" ".join(sans), tuple(m.uci() for m in board.move_stack)))
    return lines


def load_openings(
    count: int, *, plies: int = 8, seed: int = 0, book: str | os.PathLike[str] | None = None
) -> list[Opening]:
    """``count`` openings: from the Polyglot book if one is found, else built-in.

    Built-in lines are cycled when more are asked for than exist; their
    order is shuffled by ``seed``.
    """
    path = find_book(book)
    lines: list[Opening] = []
    if path is not None:
        try:
            lines = book_openings(path, count, plies, seed)
        except (OSError, ValueError) as exc:
            log.warning("cannot read opening book %s (%s); using built-in openings", path, exc)
    else:
        log.info("no Polyglot book found; using the %d built-in openings", len(BUILTIN_OPENINGS))
    if len(lines) < count:
        builtin = list(BUILTIN_OPENINGS)
        random.Random(seed).shuffle(builtin)
        lines += [builtin[i % len(builtin)] for i in range(count - len(lines))]
    return lines
