"""The position a /move request asks about: the end of its PGN's mainline.

python-chess's reader is forgiving: it skips text it does not understand and
records illegal moves instead of raising. A server must not guess, so this
module refuses what the reader would silently skip.

The PGN comes from the network, so the work it may cause is bounded
(:class:`PgnLimits`): its length, the plies of its mainline and the number
of variations (which are skipped, never played out). The checks are cheap
counts made before the reader runs; the reader then plays only the
mainline. The caller runs :func:`board_from_pgn` off the event loop; the
text is scanned a token at a time, and no scan of a regular expression runs
over more than a few hundred characters without a token, so the
interpreter switches threads often and a long PGN cannot starve the
server's event loop.
"""

from __future__ import annotations

import dataclasses
import io
import re

import chess
import chess.pgn

_TAG_LINE = re.compile(r'^\s*\[\s*[A-Za-z0-9_+#=:-]+\s+"(?:[^"\\]|\\.)*"\s*\]\s*$')
# Left alone by python-chess's movetext regex but fine in a PGN: move numbers ("12.", "12..."),
# check and mate signs, and "e.p.".
_HARMLESS = re.compile(r"\d+\s*\.+|[+#]|\be\.p\.")


class PgnError(ValueError):
    """The PGN cannot be played on: unreadable, over a limit, an illegal move, or a game already over."""


@dataclasses.dataclass(frozen=True)
class PgnLimits:
    """How much PGN one request may make the server read."""

    max_chars: int = 100_000
    """Longest PGN text, in characters: a 4,000-ply game with a clock comment on every move fits.
    It also bounds how long one scan of the reader's regular expression holds the interpreter
    (tens of milliseconds), during which the event loop cannot answer."""
    max_plies: int = 4_000
    """Most half-moves in the mainline (games between bots end long before: the 75-move rule)."""
    max_variations: int = 200
    """Most variations ``( ... )``; they are skipped, but each costs reading."""


def board_from_pgn(pgn: str, limits: PgnLimits = PgnLimits()) -> chess.Board:
    """The board at the end of the mainline (move stack included, for repetitions).

    An empty PGN (or one of headers only) is the starting position, or the
    ``FEN`` header's position. Variations and comments are allowed and
    ignored.

    :raises PgnError: text over ``limits``, text the reader cannot use, an
        illegal or null move, a non-standard variant or an invalid position,
        or a game already over (checkmate, stalemate, insufficient material,
        the 75-move rule, fivefold repetition). Draws a player must claim
        (threefold, 50 moves) are still played: the opponent may not claim
        them.
    """
    _check_size(pgn, limits)
    moves = _check_text(pgn)
    builder = _MainlineBuilder(limits.max_plies)
    try:
        board = chess.pgn.read_game(io.StringIO(pgn), Visitor=lambda: builder)
    except PgnError:
        raise
    except ValueError as e:  # an illegal or ambiguous move, a bad FEN
        raise PgnError(f"PGN does not parse: {_describe(e)}") from e
    except Exception as e:  # noqa: BLE001 - the reader's own bugs on odd input: refuse, in our words
        raise PgnError("PGN does not parse (the reader gave up on it)") from e
    if board is None:
        board = chess.Board()
    else:
        if builder.errors:
            raise PgnError(f"PGN does not parse: {_describe(builder.errors[0])}")
        if type(board) is not chess.Board or board.chess960:
            raise PgnError(f"only standard chess is played here, not {builder.variant or 'this variant'!r}")
        if any(not m for m in board.move_stack):
            raise PgnError("the PGN holds a null move (--), which is not a move of the game")
        if builder.plies != moves:
            raise PgnError("PGN does not parse: the reader would play only part of its mainline")
    if not board.is_valid():
        raise PgnError(f"the position is not a legal chess position ({board.status()!r}): {board.fen()}")
    outcome = board.outcome(claim_draw=False)
    if outcome is not None:
        raise PgnError(f"the game is already over ({outcome.termination.name.lower()}, {outcome.result()}); there is no move to make")
    return board


class _MainlineBuilder(chess.pgn.BoardBuilder):
    """The mainline's end board; variations skipped, errors collected, plies counted against a cap."""

    def __init__(self, max_plies: int) -> None:
        self.max_plies = max_plies
        self.plies = 0
        self.errors: list[Exception] = []
        self.variant: str | None = None

    def visit_header(self, tagname: str, tagvalue: str) -> None:
        if tagname.lower() == "variant":
            self.variant = tagvalue[:40]

    def visit_move(self, board: chess.Board, move: chess.Move) -> None:
        if not self.skip_variation_depth:
            self.plies += 1
            if self.plies > self.max_plies:
                raise PgnError(f"the PGN's mainline is over the limit of {self.max_plies} plies")

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)


def _check_size(pgn: str, limits: PgnLimits) -> None:
    """Refuse, before reading, a PGN whose length or variation count is over the limits (C-speed counts)."""
    if len(pgn) > limits.max_chars:
        raise PgnError(f"the PGN has {len(pgn):,} characters, over the limit of {limits.max_chars:,}")
    variations = pgn.count("(")
    if variations > limits.max_variations:
        raise PgnError(f"the PGN holds {variations:,} variations or more, over the limit of {limits.max_variations}; "
                       "send the game's mainline")


def _check_text(pgn: str) -> int:
    """Refuse text the reader would skip without a word (``garbage``, ``1. e4 ???x``, a long run of
    nothing); the number of moves in the mainline.

    Scans like python-chess's reader (comments to their ``}``, ``;`` to the end of the line), but
    each regular-expression search looks at most :data:`_MAX_GAP` characters ahead.
    """
    lines = pgn.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("%")):
        i += 1
    while i < len(lines) and lines[i].lstrip().startswith("["):
        if not _TAG_LINE.match(lines[i]):
            raise PgnError(f"PGN does not parse: bad header line {lines[i].strip()[:80]!r}")
        i += 1
    text = "\n".join(line for line in lines[i:] if not line.lstrip().startswith("%"))
    pos = depth = moves = 0
    while pos < len(text):
        match = chess.pgn.MOVETEXT_REGEX.search(text, pos, pos + _MAX_GAP)
        _check_gap(text[pos:match.start() if match else pos + _MAX_GAP], moves)
        if match is None:
            break
        token = match.group(0)
        if token[0] in "{;":  # a comment: to its closing brace, or to the end of the line
            end = text.find("}" if token[0] == "{" else "\n", match.start())
            pos = len(text) if end < 0 else end + 1
            continue
        depth += (token == "(") - (token == ")")
        moves += depth == 0 and match.group(1) is not None
        pos = match.end()
    return moves


_MAX_GAP = 256
"""Most characters between two tokens of the moves (spaces, move numbers): more is refused, and no
scan of the reader's regular expression runs longer than this over text without a token."""


def _check_gap(text: str, moves_before: int) -> None:
    if not text or text.isspace() and len(text) < _MAX_GAP and not (moves_before and _BLANK_LINE.search(text)):
        return
    if len(text) >= _MAX_GAP:
        raise PgnError(f"PGN does not parse: {_MAX_GAP} characters or more without a move")
    junk = _HARMLESS.sub(" ", text).split()
    if junk:
        raise PgnError(f"PGN does not parse: unexpected text {junk[0][:40]!r} in the moves")
    if moves_before and _BLANK_LINE.search(text):
        raise PgnError("PGN does not parse: a blank line inside the moves ends a PGN game, and the moves after it "
                       "would be ignored")


_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


def _describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) < 200 else text[:200] + "..."
