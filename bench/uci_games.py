"""Benchmark of ``l4demons uci`` under python-chess against an opponent that answers at once.

python-chess's engine client sends the next ``position``/``go`` the moment
it reads ``bestmove``; with an opponent that needs no time, that is the
fastest a GUI or match runner can drive an engine. Each game plays the
engine (``--movetime`` a move, 0.02 s by default) against an instant
opponent (a capture when there is one, else a random move), colours
alternating, one engine process for all games (``ucinewgame`` between
them), up to ``--max-plies`` plies a game. A ``bestmove`` that does not
come within python-chess's timeout is a hang; a move not legal in the
position is an illegal move.

Baseline in the same run: Stockfish (an opponent only, never part of the
bot) driven by the same loop at the same movetime for ``--baseline-games``
games, so the time per move of the two engines is compared as a ratio on
the same machine and the same client.

    python bench/uci_games.py                         # 200 games, untrained small net
    python bench/uci_games.py --hub hf://me/L4Demons --games 50
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import chess
import chess.engine

ROOT = Path(__file__).resolve().parents[1]
try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from l4demons.elo.engines import find_stockfish  # noqa: E402


@dataclass
class Tally:
    """What one engine did over its games."""

    games: int = 0
    moves: int = 0
    hangs: int = 0
    illegal: int = 0
    errors: list[str] = field(default_factory=list)
    move_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


def instant_reply(board: chess.Board, rng: random.Random) -> chess.Move:
    moves = list(board.legal_moves)
    captures = [m for m in moves if board.is_capture(m)]
    return rng.choice(captures or moves)


def start(command: list[str], options: dict | None) -> chess.engine.SimpleEngine:
    """The engine, configured and ready (``isready`` answered: its weights are loaded, not timed)."""
    engine = chess.engine.SimpleEngine.popen_uci(command, timeout=120)
    if options:
        engine.configure(options)
    engine.ping()
    return engine


def play(command: list[str], games: int, movetime: float, max_plies: int, seed: int,
         options: dict | None = None) -> Tally:
    """``games`` games of the engine run by ``command`` against the instant opponent."""
    tally, rng = Tally(), random.Random(seed)
    t0 = time.perf_counter()
    engine = start(command, options)
    try:
        for g in range(games):
            board, engine_side = chess.Board(), chess.WHITE if g % 2 == 0 else chess.BLACK
            game = object()  # a new game for python-chess: it sends ucinewgame
            while not board.is_game_over(claim_draw=True) and board.ply() < max_plies:
                if board.turn != engine_side:
                    board.push(instant_reply(board, rng))
                    continue
                started = time.perf_counter()
                try:
                    move = engine.play(board, chess.engine.Limit(time=movetime), game=game).move
                except (chess.engine.EngineError, TimeoutError) as e:
                    tally.hangs += isinstance(e, TimeoutError)
                    tally.errors.append(f"game {g + 1} ply {board.ply()}: {type(e).__name__}: {e}")
                    engine.quit()
                    engine = start(command, options)
                    break
                tally.move_ms.append((time.perf_counter() - started) * 1000)
                tally.moves += 1
                if move not in board.legal_moves:
                    tally.illegal += 1
                    tally.errors.append(f"game {g + 1}: illegal {move} in {board.fen()}")
                    break
                board.push(move)
            tally.games += 1
    finally:
        engine.quit()
    tally.seconds = time.perf_counter() - t0
    return tally


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def make_hub(folder: Path, net: str) -> Path:
    """A local hub whose head holds an untrained ``net`` (the engine loads it as it would a trained one)."""
    from l4demons.hub.local import LocalHub
    from l4demons.network import NetConfig, build_network, save_weights

    cfg = NetConfig.from_name(net)
    weights = folder / "weights.pt"
    save_weights(build_network(cfg, seed=0), cfg, weights)
    hub = LocalHub(folder / "hub")
    hub.commit({"model.pt": weights, "model_best.pt": weights}, "Initial model weights (randomly initialized)", None)
    return hub.path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--movetime", type=float, default=0.02, help="seconds a move (python-chess Limit(time=...))")
    parser.add_argument("--max-plies", type=int, default=80, help="plies a game at most")
    parser.add_argument("--hub", default=None, help="hub with weights (default: a temporary hub with an untrained net)")
    parser.add_argument("--net", default="small", help="size of that untrained net")
    parser.add_argument("--threads", type=int, default=1, help="engine Threads option")
    parser.add_argument("--baseline-games", type=int, default=20, help="games of Stockfish in the same loop (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        hub = args.hub or str(make_hub(Path(tmp), args.net))
        command = [sys.executable, "-m", "l4demons", "uci", "--hub", hub, "--device", "cpu"]
        rows = [("l4demons uci", play(command, args.games, args.movetime, args.max_plies, args.seed,
                                      {"Threads": args.threads}))]
        if args.baseline_games:
            sf = play([find_stockfish()], args.baseline_games, args.movetime, args.max_plies, args.seed,
                      {"Threads": 1, "Hash": 16})
            rows.append(("stockfish (baseline)", sf))

    base = statistics.median(rows[-1][1].move_ms) if len(rows) > 1 else None
    print(f"{args.games} games of at most {args.max_plies} plies, {args.movetime * 1000:g} ms a move, against an "
          f"instant opponent; {os.cpu_count()} CPUs (shared)\n")
    print("| engine | games | moves | hangs | illegal moves | ms a move p50 | p99 | max | p50 vs baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in rows:
        ratio = f"{statistics.median(t.move_ms) / base:.2f}" if base and t.move_ms else "-"
        print(f"| {name} | {t.games} | {t.moves} | {t.hangs} | {t.illegal} | {pct(t.move_ms, .5):.1f} "
              f"| {pct(t.move_ms, .99):.1f} | {max(t.move_ms, default=float('nan')):.1f} | {ratio} |")
    for name, t in rows:
        for line in t.errors[:10]:
            print(f"{name}: {line}")
    return 0 if all(t.hangs == 0 and t.illegal == 0 for _, t in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
