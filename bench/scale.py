"""Benchmark of the two halves of a cycle at scale: self-play and the learner.

Prints a Markdown table of

1. self-play with 1 and 2 worker processes (``SelfPlayPool``, the same
   ``--games`` each time, fixed seed): network evaluations per second (the
   evaluator's count of positions run through the net) and games per second,
   the best of ``--repeats`` interleaved measurements (other work on the
   machine only ever slows one down); the pool is started and warmed up (one
   game per worker) before the clock runs, as it is between a run's cycles;
2. the learner (``Learner.train_steps`` on a replay window holding the games
   of part 1) beside a raw loop of the same network and batch size doing
   forward + backward + optimizer step on pre-built batches: positions per
   second of each (from median step times) and their ratio (the target is
   >= 0.9). The two alternate in blocks, so a change of machine load hits
   both alike. The learner's extra time is the data path: sampling,
   gathering and unpacking a batch, and moving it to the device.

    python bench/scale.py                         # small net, 64 games of at most 60 plies, 24 steps
    python bench/scale.py --net tiny --games 16 --steps 8
    python bench/scale.py --device cuda --workers 1 2 4 8 --steps 200
    python bench/scale.py --profile               # also cProfile the learner's steps
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Callable

try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from l4demons.devices import cpu_count, resolve_device, worker_devices  # noqa: E402
from l4demons.learner import Learner, LearnerConfig  # noqa: E402
from l4demons.losses import value_target  # noqa: E402
from l4demons.network import NetConfig, build_network, weights_dict  # noqa: E402
from l4demons.replay import ReplayChunk, ReplayWindow  # noqa: E402
from l4demons.selfplay import GameRecord, SelfPlayConfig  # noqa: E402
from l4demons.workers import SelfPlayPool  # noqa: E402

SEED = 1234


def bench_selfplay(workers: int, net_cfg: NetConfig, state_dict: dict, sp_cfg: SelfPlayConfig, games: int,
                   device: str, seconds: float | None = None) -> tuple[dict, list[GameRecord]]:
    """Evaluations and games per second of one timed ``pool.play``.

    ``seconds``: stop the warm-up and the timed play after that long (games in flight are dropped, their
    evaluations still counted); default: play every game to its end.
    """

    def after(limit: float | None) -> Callable[[], bool]:
        end = None if limit is None else time.perf_counter() + limit
        return lambda: end is not None and time.perf_counter() > end

    with SelfPlayPool(workers, net_cfg, sp_cfg, worker_devices(device)) as pool:
        # warm-up: processes started, nets built, first calls made
        pool.play(state_dict, workers, SEED + 1, should_stop=after(None if seconds is None else min(seconds, 5.0)))
        before = pool.evaluations
        t0 = time.perf_counter()
        records = pool.play(state_dict, games, SEED, should_stop=after(seconds))
        seconds = time.perf_counter() - t0
        evals = pool.evaluations - before
    row = {"workers": workers, "games": len(records), "positions": sum(len(g) for g in records),
           "evals": evals, "seconds": seconds, "evals_s": evals / seconds, "games_s": len(records) / seconds}
    return row, records


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def raw_steps(raw: Learner, batches: list[tuple], steps: int) -> float:
    """Seconds for ``steps`` forward+backward+optimizer steps on batches already on the device.

    The same loss, autocast, optimizer and schedule as the learner's (``raw``'s own), only no data path.
    """
    net, opt, device = raw.net, raw.optimizer, raw.device
    net.train()
    _sync(device)
    t0 = time.perf_counter()
    for step in range(steps):
        planes, target, legal, weight, wdl = batches[step % len(batches)]
        with raw._autocast():
            policy_logits, value_logits = net(planes)
            logp = F.log_softmax(policy_logits.float().masked_fill(~legal, -1e9), dim=1)
            policy_loss = (-(target * logp).sum(dim=1) * weight).sum() / weight.sum().clamp(min=1.0)
            loss = policy_loss + raw.cfg.value_weight * F.cross_entropy(value_logits.float(), wdl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        raw.scheduler.step()
    _sync(device)
    return time.perf_counter() - t0


def learner_steps(learner: Learner, replay: ReplayWindow, steps: int, rng: np.random.Generator) -> float:
    _sync(learner.device)
    t0 = time.perf_counter()
    learner.train_steps(replay, steps, rng)
    _sync(learner.device)
    return time.perf_counter() - t0


def bench_learner(net_cfg: NetConfig, replay: ReplayWindow, steps: int, batch: int, device: str) -> dict:
    """Positions per second of the learner and of the raw loop, from their median step times.

    The two alternate in blocks (which goes first alternates too), and the
    medians shrug off the bursts of other work on a shared machine. A block is
    one step on the CPU; on a GPU it is 10, so that the raw loop keeps the
    GPU's queue full and the learner's per-step host work and syncs show.
    """
    dev = torch.device(device)
    cfg = LearnerConfig(batch_size=batch)
    learner = Learner(build_network(net_cfg, SEED).to(dev), cfg, dev)
    raw = Learner(build_network(net_cfg, SEED).to(dev), cfg, dev)
    rng = np.random.default_rng(SEED)
    batches = []  # several, so that the raw loop does not just overfit one batch
    for _ in range(8):
        b = replay.sample(batch, rng)
        arrays = (b.planes, b.policy, b.legal, b.policy_weight, value_target(b, cfg.value_target_mix))
        batches.append(tuple(torch.from_numpy(a).to(dev) for a in arrays))

    learner_steps(learner, replay, 2, rng)  # warm-up both (allocator, kernels, optimizer state)
    raw_steps(raw, batches, 2)
    block = 1 if dev.type == "cpu" else 10
    t_learner, t_raw = [], []
    for k in range(max(1, steps // block)):
        if k % 2:
            t_raw.append(raw_steps(raw, batches, block))
            t_learner.append(learner_steps(learner, replay, block, rng))
        else:
            t_learner.append(learner_steps(learner, replay, block, rng))
            t_raw.append(raw_steps(raw, batches, block))
    med_learner, med_raw = float(np.median(t_learner)) / block, float(np.median(t_raw)) / block

    t0 = time.perf_counter()  # the data path alone: what the learner adds to the raw loop
    for _ in range(10):
        replay.sample(batch, rng)
    data_ms = (time.perf_counter() - t0) / 10 * 1000
    return {"learner_pos_s": batch / med_learner, "raw_pos_s": batch / med_raw, "ratio": med_raw / med_learner,
            "step_ms": med_raw * 1000, "learner_ms": med_learner * 1000, "data_ms": data_ms, "steps": len(t_raw) * block,
            "mean_ratio": float(np.sum(t_raw) / np.sum(t_learner))}


def profile_learner(net_cfg: NetConfig, replay: ReplayWindow, steps: int, batch: int, device: str) -> str:
    dev = torch.device(device)
    learner = Learner(build_network(net_cfg, SEED).to(dev), LearnerConfig(batch_size=batch), dev)
    rng = np.random.default_rng(SEED)
    learner.train_steps(replay, 1, rng)
    prof = cProfile.Profile()
    prof.enable()
    learner.train_steps(replay, steps, rng)
    _sync(dev)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="small", help="network size: a preset or bNcM (default small)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where the networks run")
    parser.add_argument("--games", type=int, default=64, help="self-play games per measurement (default 64)")
    parser.add_argument("--max-plies", type=int, default=60, help="self-play game length cap (default 60)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure (default 1 2)")
    parser.add_argument("--repeats", type=int, default=2, help="self-play measurements per worker count; the best is shown")
    parser.add_argument("--steps", type=int, default=24, help="timed backprop steps of each of learner and raw loop")
    parser.add_argument("--batch-size", type=int, default=256, help="positions per step (default 256)")
    parser.add_argument("--profile", action="store_true", help="cProfile the learner's steps too")
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # self-play: one thread per worker, as in the pool's processes
    net_cfg = NetConfig.from_name(args.net)
    state_dict = weights_dict(build_network(net_cfg, SEED), net_cfg)["state_dict"]
    sp_cfg = SelfPlayConfig(max_plies=args.max_plies)
    print(f"# bench/scale.py: {net_cfg.name}, device {device}, {cpu_count()} cores, torch {torch.__version__}, "
          f"{args.games} games of <= {args.max_plies} plies, {sp_cfg.simulations}/{sp_cfg.fast_simulations} "
          f"simulations, {sp_cfg.concurrent_games} games in flight per worker; load average before: "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    best: dict[int, dict] = {}
    games = None
    for _ in range(args.repeats):  # interleaved, and the best of each kept: other work only ever slows a run
        for w in args.workers:
            row, records = bench_selfplay(w, net_cfg, state_dict, sp_cfg, args.games, device)
            games = games or records
            if w not in best or row["evals_s"] > best[w]["evals_s"]:
                best[w] = row
            print(f"  self-play, {w} worker(s): {row['evals']} evaluations, {row['games']} games in "
                  f"{row['seconds']:.1f}s", flush=True)
    rows = [best[w] for w in args.workers]

    torch.set_num_threads(cpu_count())  # the learner gets the whole machine, as in a run
    replay = ReplayWindow()
    replay.add(ReplayChunk.from_games("bench", games))
    lrn = bench_learner(net_cfg, replay, args.steps, args.batch_size, device)
    print(f"  learner: {lrn['steps']} steps each; load average after: {os.getloadavg()[0]:.1f}", flush=True)

    base = rows[0]["evals_s"]
    print()
    print("| self-play | evaluations/s | games/s | speed-up |")
    print("|---|---:|---:|---:|")
    for r in rows:
        who = f"{r['workers']} worker processes" if r["workers"] > 1 else "1 worker (in-process, as the pool plays it)"
        print(f"| {who} | {r['evals_s']:,.0f} | "
              f"{r['games_s']:.2f} | {r['evals_s'] / base:.2f}x |")
    print()
    print(f"| learner (batch {args.batch_size}, {lrn['steps']} steps) | positions/s | ms/step |")
    print("|---|---:|---:|")
    print(f"| raw forward+backward+AdamW, batch pre-built | {lrn['raw_pos_s']:,.0f} | {lrn['step_ms']:.1f} |")
    print(f"| `Learner.train_steps` on the replay window | {lrn['learner_pos_s']:,.0f} | {lrn['learner_ms']:.1f} |")
    print(f"| learner / raw | **{lrn['ratio']:.2f}** (target >= 0.9; of total times {lrn['mean_ratio']:.2f}) | "
          f"sampling a batch: {lrn['data_ms']:.1f} |")

    if args.profile:
        print()
        print(profile_learner(net_cfg, replay, max(2, args.steps // 4), args.batch_size, device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
