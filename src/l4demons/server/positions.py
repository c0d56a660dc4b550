"""The position a /move request asks about: the end of its PGN's mainline.

python-chess's reader is forgiving: it skips text it does not understand and
records illegal moves in ``game.errors`` instead of raising. A server must
not guess, so this module refuses what the reader would silently skip.
"""

from __future__ import annotations

import io
import re

import chess
import chess.pgn

_TAG_LINE = re.compile(r'^\s*\[\s*[A-Za-z0-9_+#=:-]+\s+"(?:[^"\\]|\\.)*"\s*\]\s*$')
# Left alone by python-chess's movetext regex but fine in a PGN: move numbers ("12.", "12..."),
# check and mate signs, and "e.p.".
_HARMLESS = re.compile(r"\d+\s*\.+|[+#]|\be\.p\.")


class PgnError(ValueError):
    """The PGN cannot be played on: unreadable, an illegal move, or a game already over."""


def board_from_pgn(pgn: str) -> chess.Board:
    """The board at the end of the mainline (move stack included, for repetitions).

    An empty PGN (or one of headers only) is the starting position, or the
    ``FEN`` header's position.

    :raises PgnError: text the reader cannot use, an illegal or null move, a
        non-standard variant or an invalid position, or a game already over
        (checkmate, stalemate, insufficient material, the 75-move rule,
        fivefold repetition). Draws a player must claim (threefold, 50 moves)
        are still played: the opponent may not claim them.
    """
    _check_text(pgn)
    try:
        game = chess.pgn.read_game(io.StringIO(pgn), Visitor=_QuietBuilder)
    except Exception as e:  # noqa: BLE001 - the reader raises a few types on odd input
        raise PgnError(f"PGN does not parse: {e}") from e
    if game is None:
        board = chess.Board()
    else:
        if game.errors:
            raise PgnError(f"PGN does not parse: {_describe(game.errors[0])}")
        if type(game.board()) is not chess.Board or game.board().chess960:
            raise PgnError(f"only standard chess is played here, not {game.headers.get('Variant', 'this variant')!r}")
        board = game.end().board()
        if any(not m for m in board.move_stack):
            raise PgnError("the PGN holds a null move (--), which is not a move of the game")
    if not board.is_valid():
        raise PgnError(f"the position is not a legal chess position ({board.status()!r}): {board.fen()}")
    outcome = board.outcome(claim_draw=False)
    if outcome is not None:
        raise PgnError(f"the game is already over ({outcome.termination.name.lower()}, {outcome.result()}); there is no move to make")
    return board


class _QuietBuilder(chess.pgn.GameBuilder):
    """Collects errors in ``game.errors`` without logging them (the caller reports them)."""

    def handle_error(self, error: Exception) -> None:
        self.game.errors.append(error)


def _check_text(pgn: str) -> None:
    """Refuse text the reader would skip without a word (e.g. ``garbage`` or ``1. e4 ???x``)."""
    lines = pgn.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("%")):
        i += 1
    while i < len(lines) and lines[i].lstrip().startswith("["):
        if not _TAG_LINE.match(lines[i]):
            raise PgnError(f"PGN does not parse: bad header line {lines[i].strip()[:80]!r}")
        i += 1
    movetext = "\n".join(line for line in lines[i:] if not line.lstrip().startswith("%"))
    leftover = _HARMLESS.sub(" ", chess.pgn.MOVETEXT_REGEX.sub(" ", movetext))
    junk = leftover.split()
    if junk:
        raise PgnError(f"PGN does not parse: unexpected text {junk[0][:40]!r} in the moves")


def _describe(error: Exception) -> str:
    text = str(error)
    return text if len(text) < 200 else text[:200] + "..."
