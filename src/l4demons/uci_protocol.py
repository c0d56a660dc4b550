"""The UCI protocol's values and parsing, apart from any I/O (used by :mod:`l4demons.uci`).

The engine's options and their ``option`` declarations, the limits of a
``go`` command, the board a ``position`` command sets up, and the ``info``
line of a search's progress. Nothing here reads or writes a stream, so the
parsing is tested line by line.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import chess

if TYPE_CHECKING:
    from l4demons.bot import SearchInfo


class UciError(ValueError):
    """A command the engine cannot follow (reported as ``info string``, the engine goes on)."""


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """The engine's UCI options; ``l4demons uci``'s flags (generated from these fields) set their first values."""

    hub: str = ""
    """Checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB, else the local hub)."""
    file: str = "model_best.pt"
    """Weights to play: model_best.pt or model.pt on the hub, or a local .pt file."""
    device: str = "auto"
    """Where the network runs: auto (CUDA when present), cpu or cuda."""
    threads: int = 0
    """Torch CPU threads (0: torch's default, all cores)."""
    move_overhead: int = 50
    """Milliseconds kept back per move for the GUI and transport."""
    allow_random: bool = False
    """Play an untrained network when no weights exist anywhere."""
    show_wdl: bool = False
    """UCI_ShowWDL: info lines carry wdl W D L, per mille from the side to move's view (off by default, as in Stockfish)."""
    token: str | None = None
    """Hugging Face token (default: $HF_TOKEN or the saved login; never shown)."""

    def weights_key(self) -> tuple:
        """What a change of requires reloading the network."""
        return (self.hub, self.file, self.device, self.allow_random)


@dataclasses.dataclass(frozen=True)
class UciOption:
    name: str
    field: str
    kind: str
    """``string``, ``spin``, ``combo`` or ``check``."""
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()

    def declaration(self, value: object) -> str:
        default = ("true" if value else "false") if self.kind == "check" else (value if value != "" else "<empty>")
        text = f"option name {self.name} type {self.kind} default {default}"
        if self.kind == "spin":
            text += f" min {self.min} max {self.max}"
        for choice in self.choices:
            text += f" var {choice}"
        return text

    def parse(self, raw: str) -> object:
        """:raises UciError: the value does not fit the option."""
        if self.kind == "string":
            return "" if raw in ("", "<empty>") else raw
        if self.kind == "check":
            if raw.lower() not in ("true", "false"):
                raise UciError(f"option {self.name} takes true or false, not {raw!r}")
            return raw.lower() == "true"
        if self.kind == "combo":
            if raw not in self.choices:
                raise UciError(f"option {self.name} takes one of {', '.join(self.choices)}, not {raw!r}")
            return raw
        try:
            value = int(raw)
        except ValueError:
            raise UciError(f"option {self.name} takes an integer, not {raw!r}") from None
        if not self.min <= value <= self.max:
            raise UciError(f"option {self.name} must be between {self.min} and {self.max}, not {value}")
        return value


OPTIONS = (
    UciOption("Hub", "hub", "string"),
    UciOption("File", "file", "string"),
    UciOption("Device", "device", "combo", choices=("auto", "cpu", "cuda")),
    UciOption("Threads", "threads", "spin", min=0, max=256),
    UciOption("Move Overhead", "move_overhead", "spin", min=0, max=5000),
    UciOption("AllowRandom", "allow_random", "check"),
    UciOption("UCI_ShowWDL", "show_wdl", "check"),
)


@dataclasses.dataclass(frozen=True)
class GoParams:
    """The limits of one ``go`` command (times in milliseconds)."""

    wtime: int | None = None
    btime: int | None = None
    winc: int = 0
    binc: int = 0
    movestogo: int | None = None
    movetime: int | None = None
    nodes: int | None = None
    depth: int | None = None
    mate: int | None = None
    infinite: bool = False
    ponder: bool = False
    searchmoves: tuple[str, ...] = ()


_GO_INTS = {"wtime", "btime", "winc", "binc", "movestogo", "movetime", "nodes", "depth", "mate"}
_GO_KEYWORDS = _GO_INTS | {"infinite", "ponder", "searchmoves"}


def parse_go(tokens: list[str]) -> GoParams:
    """``go`` arguments -> :class:`GoParams` (negative clocks count as 0, as GUIs do send them).

    :raises UciError: a value that is not an integer.
    """
    values: dict[str, object] = {}
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word in _GO_INTS:
            if i + 1 >= len(tokens):
                raise UciError(f"go {word} needs a value")
            try:
                values[word] = max(0, int(tokens[i + 1]))
            except ValueError:
                raise UciError(f"go {word} takes an integer, not {tokens[i + 1]!r}") from None
            i += 2
        elif word in ("infinite", "ponder"):
            values[word] = True
            i += 1
        elif word == "searchmoves":
            moves = []
            i += 1
            while i < len(tokens) and tokens[i] not in _GO_KEYWORDS:
                moves.append(tokens[i])
                i += 1
            values["searchmoves"] = tuple(moves)
        else:
            raise UciError(f"unknown go parameter {word!r}")
    return GoParams(**values)


def parse_position(tokens: list[str]) -> tuple[chess.Board, str | None]:
    """``position`` arguments -> (board, a problem to report or None).

    An illegal move in the ``moves`` list stops the replay there (the board
    holds the legal prefix) and is reported.

    :raises UciError: neither ``startpos`` nor a valid ``fen``.
    """
    if not tokens:
        raise UciError("position needs startpos or fen")
    moves_at = tokens.index("moves") if "moves" in tokens else len(tokens)
    if tokens[0] == "startpos":
        board = chess.Board()
    elif tokens[0] == "fen":
        fen = " ".join(tokens[1:moves_at])
        try:
            board = chess.Board(fen)
        except ValueError as e:
            raise UciError(f"bad fen {fen!r}: {e}") from None
    else:
        raise UciError(f"position needs startpos or fen, not {tokens[0]!r}")
    for text in tokens[moves_at + 1:]:
        try:
            board.push_uci(text)
        except ValueError:
            return board, f"illegal move {text!r} in {board.fen()}; position kept before it"
    return board, None


def score_cp(value: float) -> int:
    """Centipawns for a search value in [-1, 1] (Lc0's mapping: about 100 cp at value 0.5)."""
    q = max(-0.999, min(0.999, value))
    return int(round(90 * math.tan(1.5637541897 * q)))


def wdl_permille(wdl: tuple[float, float, float]) -> tuple[int, int, int]:
    """Win/draw/loss probabilities -> whole per-mille figures summing to 1000 (UCI's ``wdl W D L``).

    W and L are rounded and D takes the rest, so W - L keeps the sign of
    the value (W - L) whenever :func:`score_cp` of it is not 0.
    """
    win = max(0, min(1000, round(1000 * wdl[0])))
    loss = max(0, min(1000 - win, round(1000 * wdl[2])))
    return win, 1000 - win - loss, loss


def info_line(info: SearchInfo, show_wdl: bool = False) -> str:
    """The ``info`` line for ``info``; with ``show_wdl`` (and W/D/L in ``info``) ``wdl W D L`` follows the score."""
    ms = max(1, int(info.elapsed_ms))
    line = (f"info depth {max(1, info.depth)} seldepth {max(1, info.depth)} nodes {info.nodes} "
            f"nps {int(info.nodes * 1000 / ms)} time {int(info.elapsed_ms)} score cp {score_cp(info.value)}")
    if show_wdl and info.wdl is not None:
        line += " wdl {} {} {}".format(*wdl_permille(info.wdl))
    if info.pv:
        line += " pv " + " ".join(m.uci() for m in info.pv)
    return line
