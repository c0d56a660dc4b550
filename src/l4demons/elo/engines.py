"""External UCI engines as players; Stockfish found and weakened to a calibrated level.

Stockfish is an opponent for measurement only: nothing outside
:mod:`l4demons.elo` imports this module, and the bot never talks to it.
Protocol handling is python-chess's (:mod:`chess.engine`); this module
only decides which binary, which options and how long to think.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import chess
import chess.engine

from l4demons.elo.errors import StockfishNotFound

DEBIAN_STOCKFISH = "/usr/games/stockfish"
"""Where Debian's ``stockfish`` package installs the binary (often not on PATH)."""


class UciEnginePlayer:
    """An external UCI engine driven through :mod:`chess.engine`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: Mapping[str, Any] | None = None,
        limit: chess.engine.Limit | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or Path(path).name
        self.last_nodes: int | None = None
        self.limit = limit or chess.engine.Limit(time=0.1)
        # A session of its own: a Ctrl-C or SIGTERM to our process group must not kill the engine mid-game;
        # the game pool decides when games end, and the engine quits with us (or on its closed stdin).
        self._engine = chess.engine.SimpleEngine.popen_uci(str(path), setpgrp=True)
        if options:
            self._engine.configure(dict(options))
        self._game = object()

    def new_game(self, seed: int) -> None:
        # A fresh token makes python-chess send ``ucinewgame``. Stockfish's
        # handicap is seeded from its clock, so ``seed`` cannot reach it.
        self._game = object()

    def choose(self, board: chess.Board) -> chess.Move:
        result = self._engine.play(board, self.limit, game=self._game, info=chess.engine.INFO_BASIC)
        if result.move is None:
            raise chess.engine.EngineError(f"{self.name} returned no move for {board.fen()}")
        self.last_nodes = result.info.get("nodes")
        return result.move

    def close(self) -> None:
        try:
            self._engine.quit()
        except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError):
            self._engine.close()


def find_stockfish(path: str | os.PathLike[str] | None = None) -> str:
    """The Stockfish binary to use: ``path``, ``$L4D_STOCKFISH``, PATH, then Debian's.

    :raises StockfishNotFound: none of them exists.
    """
    candidates = [str(path)] if path else []
    if os.environ.get("L4D_STOCKFISH"):
        candidates.append(os.environ["L4D_STOCKFISH"])
    candidates += [shutil.which("stockfish") or "", DEBIAN_STOCKFISH]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise StockfishNotFound(
        "Stockfish not found (looked at the --stockfish flag, $L4D_STOCKFISH, PATH and "
        f"{DEBIAN_STOCKFISH}); install it with `apt-get install stockfish` or point "
        "L4D_STOCKFISH at a binary."
    )


def stockfish_level(elo: int | None = None, skill: int | None = None) -> float:
    """Stockfish 15.1's internal skill level for ``UCI_Elo`` or ``Skill Level``.

    Stockfish turns ``UCI_Elo`` into a fractional level with
    ``((elo - 1346.6) / 143.4) ** (1 / 0.806)`` clamped to [0, 20], and then
    picks its weakened move when iterative deepening reaches depth
    ``1 + int(level)``. Knowing that depth lets us search exactly that far.
    """
    if elo is not None:
        return min(max(((elo - 1346.6) / 143.4) ** (1 / 0.806) if elo > 1346.6 else 0.0, 0.0), 20.0)
    return float(20 if skill is None else skill)


def stockfish_player(
    elo: int | None = None,
    skill: int | None = None,
    limit: chess.engine.Limit | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> UciEnginePlayer:
    """Stockfish weakened by ``UCI_Elo`` (1350..2850) or ``Skill Level`` (0..20).

    The default limit is ``depth = 1 + int(level)``: Stockfish chooses its
    handicapped move at that depth whatever the clock, so this reproduces
    its play at the 60s+0.6s calibration time control at a fraction of the
    cost. One thread and 16 MB of hash, so games can run side by side.
    """
    options: dict[str, Any] = {"Threads": 1, "Hash": 16}
    if elo is not None:
        options.update({"UCI_LimitStrength": True, "UCI_Elo": int(elo)})
    elif skill is not None:
        options["Skill Level"] = int(skill)
    if limit is None:
        limit = chess.engine.Limit(depth=1 + int(stockfish_level(elo, skill)))
    return UciEnginePlayer(find_stockfish(path), options, limit, name=name)
