"""The learner against a raw loop, alone: ``Learner.train_steps`` / raw forward+backward+AdamW.

Fills a replay window with a few quick in-process self-play games (the tiny
net, few simulations: only the shape of the data matters here), then times
``bench/scale.py``'s ``bench_learner``: the learner and a raw loop of the
same net, loss, autocast and optimizer on batches already on the device,
alternating in blocks so that a shared machine's load hits both alike. The
ratio is the figure to read (target >= 0.9); absolute positions/s move
with the machine's load. The last row also times assembling one batch on
the device (what the learner does) and with numpy on the host
(``ReplayWindow.sample``, the reference).

    python bench/learner.py                              # small net, batch 256, CPU
    python bench/learner.py --device cuda --batch-size 1024 --steps 200
    python bench/learner.py --net b3c32-mat --precisions fp32,bf16   # the learner's arithmetic, side by side

With ``--precisions`` it times ``Learner.train_steps`` under each
``--precision`` instead (the same net, window and batches; one step of each
in turn, the medians kept) and prints each one's speed against the first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import scale as bench_scale  # noqa: E402
from l4demons.devices import cpu_count, resolve_device  # noqa: E402
from l4demons.learner import Learner, LearnerConfig  # noqa: E402
from l4demons.network import NetConfig, build_network  # noqa: E402
from l4demons.replay import ReplayChunk, ReplayWindow  # noqa: E402
from l4demons.search import Evaluator  # noqa: E402
from l4demons.selfplay import SelfPlayConfig, play_games  # noqa: E402


def fill_window(games: int, max_plies: int, seed: int) -> ReplayWindow:
    """A window of ``games`` quick self-play games (tiny net, 8 simulations)."""
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=seed))
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=max_plies, concurrent_games=min(games, 64))
    records = play_games(ev, cfg, games, np.random.default_rng(seed))
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("bench", records))
    return window


def data_ms(window: ReplayWindow, batch: int, device: str, repeats: int = 20) -> float:
    """Milliseconds to assemble one batch on ``device`` (``ReplayWindow.on_device(...).sample``), device included."""
    data, rng = window.on_device(device), np.random.default_rng(bench_scale.SEED)
    data.sample(batch, rng)
    bench_scale._sync(torch.device(device))
    t0 = time.perf_counter()
    for _ in range(repeats):
        data.sample(batch, rng)
    bench_scale._sync(torch.device(device))
    return (time.perf_counter() - t0) / repeats * 1000


def bench_precisions(net_cfg: NetConfig, window: ReplayWindow, steps: int, batch: int, device: str,
                     precisions: list[str]) -> list[tuple[str, float]]:
    """``(precision, median ms per step)`` of ``Learner.train_steps`` under each, steps interleaved."""
    dev = torch.device(device)
    learners = [Learner(build_network(net_cfg, bench_scale.SEED).to(dev), LearnerConfig(batch_size=batch, precision=p),
                        dev) for p in precisions]
    rng = np.random.default_rng(bench_scale.SEED)
    for learner in learners:
        bench_scale.learner_steps(learner, window, 2, rng)  # warm-up: allocator, kernels, optimizer state
    times: list[list[float]] = [[] for _ in learners]
    for k in range(steps):
        order = range(len(learners)) if k % 2 == 0 else reversed(range(len(learners)))
        for i in order:
            times[i].append(bench_scale.learner_steps(learners[i], window, 1, rng))
    return [(learner.precision, float(np.median(t)) * 1000) for learner, t in zip(learners, times)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="small", help="network size: a preset or bNcM (default small)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where the networks run")
    parser.add_argument("--batch-size", type=int, default=256, help="positions per step (default 256)")
    parser.add_argument("--steps", type=int, default=24, help="timed steps of each of learner and raw loop (default 24)")
    parser.add_argument("--games", type=int, default=64, help="self-play games in the window (default 64)")
    parser.add_argument("--max-plies", type=int, default=80, help="their length cap (default 80)")
    parser.add_argument("--precisions", default="",
                        help="comma-separated --precision values to time against each other (e.g. fp32,bf16)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.set_num_threads(cpu_count())
    t0 = time.perf_counter()
    window = fill_window(args.games, args.max_plies, bench_scale.SEED)
    print(f"window: {window.train_positions} training positions from {args.games} games in "
          f"{time.perf_counter() - t0:.1f}s; load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.precisions:
        rows = bench_precisions(NetConfig.from_name(args.net), window, args.steps, args.batch_size, device,
                                args.precisions.split(","))
        print(f"| learner, {args.net}, batch {args.batch_size}, {device}, {args.steps} steps each, "
              f"{torch.get_num_threads()} threads | ms/step | positions/s | speed vs {rows[0][0]} |")
        print("|---|---:|---:|---:|")
        for precision, ms in rows:
            print(f"| `--precision {precision}` | {ms:.1f} | {args.batch_size / ms * 1000:,.0f} | "
                  f"**{rows[0][1] / ms:.2f}x** |")
        return 0
    lrn = bench_scale.bench_learner(NetConfig.from_name(args.net), window, args.steps, args.batch_size, device)
    print(f"| learner, {args.net}, batch {args.batch_size}, {device}, {lrn['steps']} steps each | positions/s | ms/step |")
    print("|---|---:|---:|")
    print(f"| raw forward+backward+AdamW, batch pre-built | {lrn['raw_pos_s']:,.0f} | {lrn['step_ms']:.1f} |")
    print(f"| `Learner.train_steps` on the replay window | {lrn['learner_pos_s']:,.0f} | {lrn['learner_ms']:.1f} |")
    print(f"| learner / raw | **{lrn['ratio']:.3f}** (of total times {lrn['mean_ratio']:.3f}) | "
          f"a batch: {data_ms(window, args.batch_size, device):.2f} on the device, {lrn['data_ms']:.2f} on the host |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
