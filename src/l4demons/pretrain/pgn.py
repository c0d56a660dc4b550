"""Training positions from PGN files: the move played is the policy target.

``.pgn`` and lichess-database ``.pgn.zst`` files are read as streams (a
``zstandard`` stream reader under a text wrapper, then python-chess's
``read_game`` one game at a time), so a file of any size costs the memory
of one game. Games are kept when both players are rated at least
``min_elo`` (if asked) and the game has a result.

The value target of a position is the game's result from the side to
move's view, or, where the move before carries a lichess ``[%eval ...]``
comment, that evaluation as ``W - L`` through Stockfish 15.1's win-rate
model at the position's ply (:func:`l4demons.pretrain.labels.value_of`;
lichess's evaluations come from Stockfish, normalised since 15.1 so that
+1.00 is a 50% chance to win: the engine's view of the position is a
better label than one game's outcome).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Iterator

import chess
import chess.pgn
import numpy as np

from l4demons.encoding import encode_position, legal_moves_and_indices
from l4demons.pretrain.labels import record_from_rows, value_of
from l4demons.selfplay import GameRecord

RESULTS = {"1-0": 1, "0-1": -1, "1/2-1/2": 0}


class PgnError(ValueError):
    """A file that cannot be read as PGN."""


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".zst":
        import zstandard

        raw = path.open("rb")
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), encoding="utf-8",
                                errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _zstd_errors() -> tuple[type[Exception], ...]:
    """What a corrupt or non-zstd ``.zst`` file raises."""
    import zstandard

    return (zstandard.ZstdError,)


def read_games(path: str | Path) -> Iterator[chess.pgn.Game]:
    """The games of one file, streamed; games python-chess could not parse whole are skipped.

    :raises PgnError: the file is missing, unreadable, or holds no game with moves.
    """
    path = Path(path)
    if not path.is_file():
        raise PgnError(f"{path}: no such file")
    seen = 0
    try:
        with _open_text(path) as text:
            while True:
                game = chess.pgn.read_game(text)
                if game is None:
                    break
                if game.errors or game.next() is None:
                    continue
                seen += 1
                yield game
    except (OSError, UnicodeError, ValueError, *_zstd_errors()) as e:
        raise PgnError(f"{path}: not a readable PGN file ({e})") from None
    if not seen:
        raise PgnError(f"{path}: holds no PGN game with moves")


def _rating(game: chess.pgn.Game, key: str) -> int | None:
    try:
        return int(game.headers.get(key, ""))
    except ValueError:
        return None


def keep(game: chess.pgn.Game, min_elo: int | None) -> bool:
    if game.headers.get("Result") not in RESULTS:
        return False
    if min_elo is None:
        return True
    ratings = (_rating(game, "WhiteElo"), _rating(game, "BlackElo"))
    return all(r is not None and r >= min_elo for r in ratings)


def game_record(game: chess.pgn.Game) -> GameRecord | None:
    """Every position of the game before a move: the move played, the result or the eval before it."""
    result = RESULTS[game.headers["Result"]]
    board = game.board()
    rows, results = [], []
    evaluation = None  # the eval comment of the previous node: the position we are at now
    node = game
    while node.variations:
        child = node.variations[0]
        move = child.move
        moves, indices = legal_moves_and_indices(board)
        if move not in moves:
            return None
        probs = np.zeros(len(moves), np.float16)
        probs[moves.index(move)] = 1.0
        mover_result = result if board.turn == chess.WHITE else -result
        q = value_of(evaluation.pov(board.turn), board.ply()) if evaluation is not None else float(mover_result)
        rows.append((encode_position(board), np.asarray(indices, np.uint16), probs, q))
        results.append(mover_result)
        board.push(move)
        evaluation = child.eval()
        node = child
    if not rows:
        return None
    record = record_from_rows(rows)
    record.results = np.array(results, np.int8)  # the game's result itself; an eval only fills the search value
    return record


def pgn_games(paths: list[str], min_elo: int | None, max_positions: int, deadline: float,
              should_stop=lambda: False) -> tuple[list[GameRecord], int]:
    """Records of the kept games of all files, until ``max_positions``, ``deadline`` or a stop; ``(records, read)``."""
    records: list[GameRecord] = []
    n = read = 0
    for path in paths:
        for game in read_games(path):
            read += 1
            if n >= max_positions or time.time() >= deadline or should_stop():
                return records, read
            if not keep(game, min_elo):
                continue
            record = game_record(game)
            if record is not None:
                records.append(record)
                n += len(record)
    return records, read
