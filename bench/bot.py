"""The bot's search in the same clock: nodes per move with the compiled core and with the Python reference.

    python bench/bot.py [--nets small,tiny] [--movetime 100,1000] [--threads 1] [--repeats 3]

Two :class:`l4demons.bot.Bot` instances with the same network (the search
behind HTTP, UCI and lichess-bot; separate so that each predicts its own
step times) think for a fixed move time on a handful of positions (opening,
middlegame, endgame), alternately with the compiled core and with the Python
reference search (``L4D_CORE=0`` for those moves), and report the network
evaluations (nodes) each search managed in that time. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics

import chess
import torch

from l4demons import core
from l4demons.bot import Bot, SearchInfo
from l4demons.network import NetConfig

POSITIONS = [
    chess.STARTING_FEN,
    "r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4",
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10",
    "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1",
    "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",
]


def nodes_per_move(bot: Bot, movetime_ms: float, compiled: bool) -> int:
    """Nodes of one search of each position; the median over positions."""
    if compiled:
        os.environ.pop("L4D_CORE", None)
    else:
        os.environ["L4D_CORE"] = "0"
    counts = []
    for fen in POSITIONS:
        infos: list[SearchInfo] = []
        bot.choose_move(chess.Board(fen), movetime_ms=movetime_ms, on_info=infos.append, info_interval_ms=1e9)
        counts.append(infos[-1].nodes)
    os.environ.pop("L4D_CORE", None)
    return int(statistics.median(counts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="small,tiny")
    ap.add_argument("--movetime", default="100,1000", help="comma-separated milliseconds per move")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each side is kept")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not core.enabled():
        raise SystemExit("the compiled core is not available here; build it with `make setup` first")
    print(f"nodes per move (median over {len(POSITIONS)} positions, best of {args.repeats} alternating rounds), "
          f"{args.threads} thread(s), untrained networks\n")
    print("| network | move time (ms) | Python reference | compiled core | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in args.nets.split(","):
        bots = {}
        for compiled in (False, True):
            os.environ["L4D_CORE"] = "1" if compiled else "0"
            bots[compiled] = Bot.random(NetConfig.from_name(name), seed=0)
            bots[compiled].warmup()
        os.environ.pop("L4D_CORE", None)
        for ms in (float(x) for x in args.movetime.split(",")):
            ref, comp = 0, 0
            for _ in range(args.repeats):
                ref = max(ref, nodes_per_move(bots[False], ms, compiled=False))
                comp = max(comp, nodes_per_move(bots[True], ms, compiled=True))
            print(f"| {bots[True].config.name} | {ms:.0f} | {ref} | {comp} | {comp / max(1, ref):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
