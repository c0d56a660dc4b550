"""Self-play throughput: the Python reference, the compiled core and the network alone, side by side.

    python bench/selfplay.py [--nets small,tiny] [--games 32] [--concurrent 32] [--threads 1] [--device cpu]

For each network, plays ``--games`` self-play games (default settings,
``--concurrent`` in flight, one process) with the Python reference search
and then with the compiled core, from the same seed, so both play the same
kind of games. After each run, pure batched inference of the same network
(random planes through ``net(x)``, nothing else) runs at that run's mean
batch size; the ratio self-play evals/s / pure evals/s is the share of the
network's own speed that self-play reaches. Self-play's batches vary (they
shrink as games end), and small batches cost more per position, so a
second pure-inference figure replays a sample of the run's own batch sizes:
the ratio to it is what the search itself costs. ``non-network us/eval`` is
the time outside the evaluator's network calls (search, move generation,
encoding, bookkeeping) per evaluation. Prints markdown tables.

``--device cuda`` runs the network on the GPU (bf16 autocast, pinned
buffers, as self-play does there); raise ``--concurrent`` so the batches
reach the sizes a GPU needs (about 4 leaves per game in flight per call).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import random
import time
from typing import Callable

import numpy as np
import torch

from l4demons import core
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


@dataclasses.dataclass
class Run:
    mode: str
    games: int
    positions: int
    evaluations: int
    calls: int
    seconds: float
    net_seconds: float
    batch_sizes: list[int]
    pure: float = 0.0
    replayed: float = 0.0

    @property
    def batch(self) -> float:
        return self.evaluations / max(1, self.calls)

    @property
    def evals_per_s(self) -> float:
        return self.evaluations / self.seconds

    @property
    def positions_per_s(self) -> float:
        return self.positions / self.seconds

    @property
    def outside_us(self) -> float:
        return (self.seconds - self.net_seconds) / self.evaluations * 1e6


def pure_inference(net: torch.nn.Module, sizes: list[int], seconds: float, device: torch.device) -> float:
    """Evaluations per second of the network alone on random planes, batch sizes cycling through ``sizes``."""
    inputs = {b: torch.randn(b, 20, 8, 8, device=device) for b in set(sizes)}
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode(), autocast():
        for x in inputs.values():
            net(x)
        sync()
        n, i, t0 = 0, 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            b = sizes[i % len(sizes)]
            net(inputs[b])
            n, i = n + b, i + 1
        sync()
        return n / (time.perf_counter() - t0)


class RecordingEvaluator(Evaluator):
    """An evaluator that remembers each call's batch size."""

    def __init__(self, net: torch.nn.Module, device: str) -> None:
        super().__init__(net, device)
        self.sizes: list[int] = []

    def evaluate(self, batch):  # noqa: ANN001, ANN201 - as Evaluator.evaluate
        self.sizes.append(batch.rows)
        return super().evaluate(batch)


def self_play(net: torch.nn.Module, device: str, cfg: SelfPlayConfig, games: int, seed: int, compiled: bool,
              should_stop: Callable[[], bool] = lambda: False) -> Run:
    """``games`` self-play games in this process; ``should_stop`` ends the run early (games in flight dropped,
    their evaluations still counted)."""
    evaluator = RecordingEvaluator(net, device)
    t0 = time.perf_counter()
    records = play_games(evaluator, cfg, games, np.random.default_rng(seed), should_stop=should_stop, compiled=compiled)
    seconds = time.perf_counter() - t0
    return Run("compiled core" if compiled else "Python reference", len(records), sum(len(r) for r in records),
               evaluator.evaluations, evaluator.calls, seconds, evaluator.net_seconds, evaluator.sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="small,tiny", help="comma-separated network sizes")
    ap.add_argument("--games", type=int, default=32)
    ap.add_argument("--concurrent", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pure-seconds", type=float, default=8.0, help="seconds of pure inference per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-reference", action="store_true", help="compiled core only (e.g. large GPU runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not core.enabled():
        raise SystemExit("the compiled core is not available here; build it with `make setup` first")
    device = torch.device(args.device)
    cfg = SelfPlayConfig(concurrent_games=args.concurrent)
    print(f"{args.games} games per run, {args.concurrent} in flight, {args.threads} thread(s), device {args.device}, "
          f"default self-play settings ({cfg.simulations}/{cfg.fast_simulations} simulations)\n")
    print("| network | search | games | positions | mean batch | evals/s | positions/s | non-network us/eval "
          "| pure inference at the mean batch | ratio | pure inference at the run's batch sizes | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for name in args.nets.split(","):
        net = build_network(NetConfig.from_name(name), seed=args.seed).to(device).eval()
        runs = []
        for compiled in ([True] if args.skip_reference else [False, True]):
            run = self_play(net, args.device, cfg, args.games, args.seed, compiled)
            run.pure = pure_inference(net, [max(1, round(run.batch))], args.pure_seconds, device)
            sample = run.batch_sizes[:]
            random.Random(args.seed).shuffle(sample)
            run.replayed = pure_inference(net, sample, args.pure_seconds, device)
            runs.append(run)
            print(f"| {NetConfig.from_name(name).name} | {run.mode} | {run.games} | {run.positions} | {run.batch:.0f} "
                  f"| {run.evals_per_s:.0f} | {run.positions_per_s:.1f} | {run.outside_us:.1f} | {run.pure:.0f} "
                  f"| {run.evals_per_s / run.pure:.2f} | {run.replayed:.0f} | {run.evals_per_s / run.replayed:.2f} |",
                  flush=True)
        if len(runs) == 2:
            summary.append((NetConfig.from_name(name).name, runs[0], runs[1]))
    if summary:
        print("\n| network | core / reference evals/s | core / reference positions/s | non-network us/eval "
              "(reference -> core) |")
        print("|---|---:|---:|---:|")
        for name, ref, comp in summary:
            print(f"| {name} | {comp.evals_per_s / ref.evals_per_s:.2f}x | {comp.positions_per_s / ref.positions_per_s:.2f}x "
                  f"| {ref.outside_us:.0f} -> {comp.outside_us:.1f} |")


if __name__ == "__main__":
    main()
