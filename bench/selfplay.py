"""Self-play throughput against the network's own speed, in one process.

    python bench/selfplay.py [--net small] [--games 32] [--concurrent 32]

Plays ``--games`` self-play games (default settings, one thread, the
batched scheduler), then runs pure batched inference of the same network
at the same mean batch size for the same number of seconds. The ratio
self-play evals/s / pure evals/s says how much of the time goes to the
network (target >= 0.8); the rest is tree search and move generation in
Python, broken down below the table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


def pure_inference(net: torch.nn.Module, batch: int, seconds: float) -> float:
    x = torch.randn(batch, 20, 8, 8)
    with torch.inference_mode():
        net(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            net(x)
            n += batch
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="small")
    ap.add_argument("--games", type=int, default=32)
    ap.add_argument("--concurrent", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = build_network(NetConfig.from_name(args.net), seed=args.seed).eval()
    evaluator = Evaluator(net)
    cfg = SelfPlayConfig(concurrent_games=args.concurrent)
    t0 = time.perf_counter()
    games = play_games(evaluator, cfg, args.games, np.random.default_rng(args.seed))
    elapsed = time.perf_counter() - t0
    batch = round(evaluator.evaluations / evaluator.calls)
    selfplay_rate = evaluator.evaluations / elapsed
    pure_rate = pure_inference(net, batch, min(20.0, elapsed / 2))
    positions = sum(len(g) for g in games)
    print(f"network {NetConfig.from_name(args.net).name}, {args.threads} thread(s), {args.games} games, "
          f"{positions} positions, {elapsed:.0f} s")
    print("| mode | mean batch | evals/s |")
    print("|---|---:|---:|")
    print(f"| self-play (search + network) | {batch} | {selfplay_rate:.0f} |")
    print(f"| pure batched inference | {batch} | {pure_rate:.0f} |")
    print(f"| **ratio** | | **{selfplay_rate / pure_rate:.2f}** |")
    net_share = evaluator.net_seconds / elapsed
    print(f"\ntime in the network's forward pass: {net_share:.0%}; "
          f"the rest ({(elapsed - evaluator.net_seconds) / evaluator.evaluations * 1e6:.0f} us per evaluation) is "
          "python-chess move generation, position packing and tree bookkeeping")


if __name__ == "__main__":
    main()
