"""Evaluations per second of every inference backend, side by side, in one run.

    python bench/inference.py [--nets small,tiny] [--threads 1,2] [--batches 1,16,64,256]
    python bench/inference.py --device cuda          # GPU rows: eager, channels-last, compile, bf16, CUDA graphs

For each network and thread count, every backend that builds here runs the
same batch of positions in short interleaved slices (``--rounds`` of
``--seconds`` each, backend after backend), so load from other processes
falls on all of them alike; the median slice counts. The ratio is to eager
in the same run. A second table gives each backend's build time, the cost
of a weights change (what a training cycle pays) and its largest logit
difference from eager.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from l4demons.inference import BACKENDS, CUDA_ONLY, Forward, InferenceError, build_forward
from l4demons.network import NetConfig, build_network

log = logging.getLogger("bench.inference")


def positions(batch: int, seed: int = 0) -> torch.Tensor:
    """Sparse 0/1 planes, like encoded positions."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 20, 8, 8, generator=gen) < 0.15).float()


def rate(forward: Forward, planes: torch.Tensor, seconds: float) -> float:
    """Evaluations per second over one slice of about ``seconds`` (at least two calls)."""
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t0 < seconds:
        forward(planes)
        calls += 1
    return calls * planes.shape[0] / (time.perf_counter() - t0)


def max_diff(forward: Forward, planes: torch.Tensor) -> float:
    with torch.inference_mode():
        ref = forward.reference(planes.to(forward.device))
    got = forward(planes)
    return max((g - r.float().cpu()).abs().max().item() for g, r in zip(got, ref))


def build_one(net: torch.nn.Module, name: str, device: str, threads: int,
              other: dict | None = None) -> tuple[Forward | None, dict]:
    """One backend's forward (None when it cannot run here) and its costs: ``build_s``, ``change_s`` (a weights
    change to ``other``, a second net's weights, and back), ``diff`` (largest logit difference from eager) or
    ``error``."""
    if name == "compile":
        # Each net and thread count compiles anew (three batch ranges each); a fresh cache keeps
        # the bench under dynamo's recompile limit, past which it would silently run eager.
        torch._dynamo.reset()
    other = other if other is not None else build_network(net.cfg, seed=1).state_dict()
    try:
        t0 = time.perf_counter()
        fwd = build_forward(net, device, name, threads=threads)
        build_s = time.perf_counter() - t0
        fwd.load_state_dict(other)
        change_s = fwd.rebuild_seconds
        fwd.load_state_dict(net.state_dict())
    except InferenceError as e:
        return None, {"backend": name, "threads": threads, "error": str(e)}
    diff = max_diff(fwd, positions(256, seed=3))
    return fwd, {"backend": name, "threads": threads, "build_s": build_s, "change_s": change_s, "diff": diff}


def build_all(net: torch.nn.Module, names: list[str], device: str, threads: int) -> tuple[dict[str, Forward], list[str]]:
    """Forwards for ``names`` and one row each of their costs."""
    forwards, rows = {}, []
    other = build_network(net.cfg, seed=1).state_dict()
    for name in names:
        fwd, cost = build_one(net, name, device, threads, other)
        if fwd is None:
            rows.append(f"| {name} | {threads} | - | - | - | not here: {cost['error']} |")
            continue
        rows.append(f"| {name} | {threads} | {cost['build_s']:.2f} | {cost['change_s']:.3f} | {cost['diff']:.1e} | |")
        forwards[name] = fwd
    return forwards, rows


def measure(forwards: dict[str, Forward], planes: torch.Tensor, rounds: int, seconds: float) -> dict[str, float]:
    """Median evaluations per second of each forward on ``planes``: ``rounds`` interleaved slices of ``seconds``."""
    samples: dict[str, list[float]] = {name: [] for name in forwards}
    for fwd in forwards.values():
        rate(fwd, planes, 0.0)  # warm-up (and batch-1 recompile for torch.compile)
    for _ in range(rounds):
        for name, fwd in forwards.items():
            samples[name].append(rate(fwd, planes, seconds))
    return {name: statistics.median(got) for name, got in samples.items()}


def default_backends(device: str) -> list[str]:
    """Every backend that can run on ``device``'s kind, eager first."""
    cuda = device.startswith("cuda")
    cpu_only = {"onnxruntime", "openvino"}
    return [b for b in BACKENDS if b not in (cpu_only if cuda else CUDA_ONLY)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--nets", default="small,tiny", help="network sizes, comma-separated")
    ap.add_argument("--threads", default=None, help="intra-op thread counts, comma-separated (default: 1,2 on cpu; 1 on cuda)")
    ap.add_argument("--batches", default=None, help="batch sizes (default: 1,16,64,256 on cpu; 1,64,256,1024 on cuda)")
    ap.add_argument("--backends", default=None, help="default: every backend for the device")
    ap.add_argument("--seconds", type=float, default=0.25, help="length of one timed slice")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved slices per backend and batch")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU here")
    batches = [int(b) for b in (args.batches or ("1,64,256,1024" if cuda else "1,16,64,256")).split(",")]
    names = args.backends.split(",") if args.backends else default_backends(args.device)
    if "eager" not in names:
        names.insert(0, "eager")
    table, costs = [], []
    for net_name in args.nets.split(","):
        net = build_network(NetConfig.from_name(net_name), seed=0).eval()
        for threads in [int(t) for t in (args.threads or ("1" if cuda else "1,2")).split(",")]:
            torch.set_num_threads(threads)
            forwards, rows = build_all(net, names, args.device, threads)
            costs += [f"| {net.cfg.name} " + r for r in rows]
            for batch in batches:
                medians = measure(forwards, positions(batch), args.rounds, args.seconds)
                base = medians["eager"]
                for name, med in medians.items():
                    table.append(f"| {net.cfg.name} | {threads} | {batch} | {name} | {med:,.0f} | {med / base:.2f} |")
    print(f"device {args.device}, torch {torch.__version__}, median of {args.rounds} interleaved "
          f"{args.seconds} s slices\n")
    print("| net | threads | batch | backend | evals/s | x eager |")
    print("|---|---:|---:|---|---:|---:|")
    print("\n".join(table))
    print("\n| net | backend | threads | build s | weights change s | max abs diff vs eager | |")
    print("|---|---|---:|---:|---:|---:|---|")
    print("\n".join(costs))


if __name__ == "__main__":
    main()
