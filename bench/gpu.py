"""One GPU run, one table: inference, self-play, GPU busy share, learner and a short training run.

    python setup.py build_ext --inplace                      # the compiled core (the table says if it was used)
    PYTHONPATH=src python bench/gpu.py                       # --device cuda: 5-6 minutes on an H200, at most 7.5
    PYTHONPATH=src python bench/gpu.py --device cpu --quick  # smoke run, 1-2 minutes on two cores

It needs the project's dependencies (``l4demons train`` imports fastapi
for its flags, and with it pydantic and opentelemetry-api) besides torch.

Phases, each with its own time budget (one that fails or runs out of time
says so in its cells, and the rest go on); the table is rewritten to
``<out>/gpu_table.md`` (raw numbers to ``<out>/gpu.json``) after each phase,
so a run cut short still leaves what it measured:

1. **inference**: evaluations/s of every :mod:`l4demons.inference` backend
   for the device (eager, channels-last, bf16, CUDA graphs, CUDA graphs
   under bf16; ``torch.compile`` with ``--compile``) at batches 256 to 4096,
   for the default net and ``medium`` (b10c128 with the material head), as
   ``bench/inference.py`` measures them (median of interleaved slices; its
   ``build_one`` and ``measure``). A
   backend hands back every policy logit on the CPU, so large batches pay
   for copying ``[B, 4672]`` floats to the host.
2. **self-play**: ``bench/selfplay.py``'s ``self_play`` (one process, the
   compiled core, the evaluator's own GPU path) for a fixed time with the
   default number of games in flight and with 256 and 1024; its evals/s
   against the best pure-inference rate of the same net in phase 1 and
   against the network alone under bf16 at its own mean batch (nothing
   copied back; self-play's evaluator gathers the legal moves' logits on
   the device). One more row plays with the trainer's pool of worker
   processes (``bench/scale.py``'s ``bench_selfplay``).
3. **GPU busy**: the share of time the GPU ran a kernel, sampled every
   200 ms (pynvml, else ``nvidia-smi -lms 200``) and averaged over each
   self-play row and over the training run; ``n/a`` without either.
4. **learner**: ``Learner.train_steps`` positions/s against a raw
   forward+backward+AdamW loop at the training batch size
   (``bench/scale.py``'s ``bench_learner``, on games just played).
5. **training**: ``l4demons train --device DEVICE --hours M/60`` with default
   flags into a temporary hub, in a child process stopped by SIGINT if it
   overruns: cycles, seconds a cycle, the share of self-play, backprop and
   measurement (the hub's metrics.jsonl; self-play and backprop timed from
   the arrival of the child's log lines). ``model_best.pt`` (when a net
   passed the gate), the last ``model.pt``, ``metrics.jsonl`` and
   ``train.log`` are copied into ``--out``.

Afterwards, measure the net that came back by games, on any machine with
Stockfish (the anchors' reference; ``model.pt`` when there is no best)::

    l4demons elo --file gpu_out/model_best.pt --games 200 --pgn gpu_out/anchors.pgn
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from l4demons import core  # noqa: E402
from l4demons.checkpoint import BEST_FILE, METRICS_FILE, MODEL_FILE, read_metrics  # noqa: E402
from l4demons.devices import cpu_count, default_workers  # noqa: E402
from l4demons.learner import LearnerConfig  # noqa: E402
from l4demons.network import NetConfig, build_network, weights_dict  # noqa: E402
from l4demons.replay import ReplayChunk, ReplayWindow  # noqa: E402
from l4demons.selfplay import SelfPlayConfig  # noqa: E402

log = logging.getLogger("bench.gpu")


def _bench_module(name: str) -> ModuleType:
    """``bench/NAME.py`` as the module ``bench_NAME`` (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench_inference = _bench_module("inference")
bench_selfplay = _bench_module("selfplay")
bench_scale = _bench_module("scale")

PHASES = ("inference", "selfplay", "learner", "training")


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one run; :data:`QUICK` is the CPU smoke run's."""

    nets: tuple[str, ...] = ("small", "medium")
    """The default net (``l4demons train``'s for a new hub) and a larger one."""
    batches: tuple[int, ...] = (256, 1024, 2048, 4096)
    """Pure-inference batch sizes."""
    rounds: int = 3
    """Interleaved slices per backend and batch; the median counts."""
    slice_s: float = 0.2
    """Length of one slice."""
    concurrent: tuple[int, ...] = (SelfPlayConfig().concurrent_games, 256, 1024)
    """Games in flight of the self-play rows (the default first)."""
    selfplay_s: float = 10.0
    """Seconds of each self-play row."""
    pure_s: float = 1.0
    """Seconds of pure inference at a self-play row's mean batch."""
    pool_workers: int = 0
    """Workers of the pool row (0: as ``l4demons train`` picks for the device)."""
    learner_games: int = 64
    """Games (of at most ``learner_plies``) that fill the learner's replay window."""
    learner_plies: int = 60
    learner_steps: int = 60
    """Timed steps of each of learner and raw loop."""
    learner_batch: int = LearnerConfig().batch_size
    train_flags: tuple[str, ...] = ()
    """Flags for ``l4demons train`` besides --hub, --device and --hours (none: the defaults)."""
    minutes: float = 3.0
    """Training budget (``--minutes``)."""
    budgets: tuple[tuple[str, float], ...] = (("inference", 80.0), ("selfplay", 120.0), ("learner", 45.0))
    """Seconds per phase; training gets what the total leaves, at most ``minutes``."""
    total_s: float = 450.0
    """The whole run, table included."""
    train_grace_s: float = 30.0
    """After the training budget, the child's start-up and last cycle may take this long before it gets SIGINT..."""
    stop_grace_s: float = 30.0
    """...and this long after SIGINT (its final commit, ``--stop-seconds`` 20) before it is killed."""


QUICK = Plan(nets=("tiny", "small"), batches=(16, 64), rounds=2, slice_s=0.1, concurrent=(8, 32), selfplay_s=3.0,
             pure_s=0.3, pool_workers=2, learner_games=4, learner_plies=16, learner_steps=4, learner_batch=32,
             train_flags=("--net", "tiny", "--games", "4", "--max-plies", "30", "--workers", "1"), minutes=0.3,
             budgets=(("inference", 30.0), ("selfplay", 40.0), ("learner", 20.0)), total_s=180.0,
             train_grace_s=15.0, stop_grace_s=20.0)


@dataclasses.dataclass
class Row:
    """One line of the table."""

    phase: str
    net: str = ""
    setting: str = ""
    result: str = ""
    ratio: str = ""
    busy: str = ""
    note: str = ""

    def markdown(self) -> str:
        cells = (self.phase, self.net, self.setting, self.result, self.ratio, self.busy, self.note)
        return "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"


HEADER = ("| phase | net | setting | result | ratio | GPU busy | note |\n"
          "|---|---|---|---:|---:|---:|---|")


@dataclasses.dataclass
class Report:
    """What a run measured: the table's rows, raw numbers for gpu.json, and where they are written."""

    out: Path
    title: str = ""
    rows: list[Row] = dataclasses.field(default_factory=list)
    raw: dict = dataclasses.field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        log.info("[GPU] %s", row.markdown())

    def table(self) -> str:
        return "\n".join([self.title, "", HEADER, *(r.markdown() for r in self.rows)]) + "\n"

    def save(self) -> None:
        """``gpu_table.md`` and ``gpu.json`` in ``out``, each written to ``.tmp`` first."""
        self.out.mkdir(parents=True, exist_ok=True)
        for name, text in (("gpu_table.md", self.table()), ("gpu.json", json.dumps(self.raw, indent=1, default=str))):
            tmp = self.out / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.out / name)


# -- GPU busy share ------------------------------------------------------------------------------------------


class BusySampler:
    """GPU utilisation (percent of time a kernel ran) every 200 ms in the background: pynvml, else nvidia-smi."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.samples: list[tuple[float, float]] = []
        self.source = "n/a"
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start sampling; returns the source (``pynvml``, ``nvidia-smi`` or ``n/a``)."""
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            pynvml.nvmlDeviceGetUtilizationRates(handle)
            self.source = "pynvml"
            self._thread = threading.Thread(target=self._nvml, args=(pynvml, handle), daemon=True)
        except Exception as e:  # noqa: BLE001 - not installed, no driver library, no such GPU: try nvidia-smi
            log.info("[GPU] pynvml unavailable (%s: %s); trying nvidia-smi", type(e).__name__, e)
            exe = shutil.which("nvidia-smi")
            if exe is None:
                return self.source
            cmd = [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200",
                   "-i", str(self.index)]
            try:
                self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError:
                return self.source
            self.source = "nvidia-smi"
            self._thread = threading.Thread(target=self._smi, daemon=True)
        self._thread.start()
        return self.source

    def _nvml(self, pynvml: ModuleType, handle: object) -> None:
        while not self._stop.wait(0.2):
            try:
                self.samples.append((time.time(), float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)))
            except Exception:  # noqa: BLE001 - one failed read loses one sample
                continue

    def _smi(self) -> None:
        for line in self._proc.stdout:
            try:
                self.samples.append((time.time(), float(line.strip())))
            except ValueError:
                continue

    def mean(self, t0: float, t1: float) -> float | None:
        """Mean utilisation (0-100) of the samples taken between ``t0`` and ``t1`` (``time.time()``)."""
        got = [u for t, u in self.samples if t0 <= t <= t1]
        return sum(got) / len(got) if got else None

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def busy_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


# -- the phases ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """What the phases share."""

    device: str
    plan: Plan
    report: Report
    sampler: BusySampler
    backends: list[str]
    deadline: float
    """``time.perf_counter()`` by which the whole run must be done."""
    peaks: dict[str, tuple[float, str]] = dataclasses.field(default_factory=dict)
    """Per net name: the best pure-inference evals/s of phase 1 and where (backend and batch)."""

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def budget(self, phase: str) -> float:
        """Seconds for ``phase``: its planned share, and never past the run's deadline."""
        return max(0.0, min(dict(self.plan.budgets).get(phase, 1e9), self.deadline - time.perf_counter()))

    def free_gpu(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()


def phase_inference(ctx: Context) -> None:
    plan, raw = ctx.plan, ctx.report.raw.setdefault("inference", [])
    threads = 1  # on a shared CPU, one thread a backend measures what a self-play worker gets
    torch.set_num_threads(threads)
    start, budget = time.perf_counter(), ctx.budget("inference")
    for i, net_name in enumerate(plan.nets):
        net_end = start + budget * (i + 1) / len(plan.nets)
        net = build_network(NetConfig.from_name(net_name), seed=0).eval()
        name = net.cfg.name
        other = build_network(net.cfg, seed=1).state_dict()
        forwards, costs = {}, {}
        for backend in ctx.backends:
            if time.perf_counter() > net_end:
                ctx.report.add(Row("inference", name, backend, "skipped", note="the phase's time budget ran out"))
                continue
            try:
                fwd, cost = bench_inference.build_one(net, backend, ctx.device, threads, other)
            except Exception as e:  # noqa: BLE001 - a probe or a CUDA error in one backend; the others go on
                fwd, cost = None, {"backend": backend, "error": f"{type(e).__name__}: {e}"}
            costs[backend] = cost
            raw.append({"net": name, **cost})
            if fwd is None:
                ctx.report.add(Row("inference", name, backend, "not here", note=cost["error"][:200]))
            else:
                forwards[backend] = fwd
        if "eager" not in forwards:
            raise RuntimeError(f"eager did not build for {name}")
        for batch in plan.batches:
            if time.perf_counter() > net_end:
                ctx.report.add(Row("inference", name, f"batch {batch}", "skipped",
                                   note="the phase's time budget ran out"))
                continue
            medians = bench_inference.measure(forwards, bench_inference.positions(batch), plan.rounds, plan.slice_s)
            for backend, rate in medians.items():
                raw.append({"net": name, "backend": backend, "batch": batch, "evals_s": rate,
                            "x_eager": rate / medians["eager"]})
                if rate > ctx.peaks.get(name, (0.0, ""))[0]:
                    ctx.peaks[name] = (rate, f"{backend} at batch {batch}")
                cost = costs[backend]
                note = (f"build {cost['build_s']:.1f} s, weights change {cost['change_s']:.3f} s, "
                        f"max diff {cost['diff']:.1e}") if batch == plan.batches[0] else ""
                ctx.report.add(Row("inference", name, f"{backend}, batch {batch}", f"{rate:,.0f} evals/s",
                                   f"{rate / medians['eager']:.2f}x eager", note=note))
        del forwards
        ctx.free_gpu()
    ctx.report.raw["peaks"] = {k: {"evals_s": v, "where": w} for k, (v, w) in ctx.peaks.items()}


def phase_selfplay(ctx: Context) -> None:
    plan, raw = ctx.plan, ctx.report.raw.setdefault("selfplay", [])
    torch.set_num_threads(1)  # one thread a self-play process, as the pool's workers run
    end = time.perf_counter() + ctx.budget("selfplay")
    compiled = core.enabled()
    path = "eager under bf16 autocast" if ctx.cuda else "the auto backend"
    for net_name in plan.nets:
        net_cfg = NetConfig.from_name(net_name)
        net = build_network(net_cfg, seed=0).to(ctx.device).eval()
        for concurrent in plan.concurrent:
            setting = f"1 process, {concurrent} games in flight"
            if time.perf_counter() + plan.selfplay_s > end:
                ctx.report.add(Row("self-play", net_cfg.name, setting, "skipped", note="the phase's time budget ran out"))
                continue
            cfg = dataclasses.replace(SelfPlayConfig(), concurrent_games=concurrent)
            stop_at = time.perf_counter() + plan.selfplay_s
            t0 = time.time()
            run = bench_selfplay.self_play(net, ctx.device, cfg, 10**6, 0, compiled,
                                           should_stop=lambda: time.perf_counter() > stop_at)
            busy = ctx.sampler.mean(t0, time.time())
            pure = bench_selfplay.pure_inference(net, [max(1, round(run.batch))], plan.pure_s, torch.device(ctx.device))
            peak, where = ctx.peaks.get(net_cfg.name, (None, ""))
            raw.append({"net": net_cfg.name, "concurrent": concurrent, "evals_s": run.evals_per_s,
                        "positions_s": run.positions_per_s, "mean_batch": run.batch, "games": run.games,
                        "seconds": run.seconds, "outside_us": run.outside_us, "pure_at_mean_batch": pure,
                        "peak": peak, "ratio_to_peak": run.evals_per_s / peak if peak else None, "busy": busy})
            ctx.report.add(Row(
                "self-play", net_cfg.name, setting, f"{run.evals_per_s:,.0f} evals/s",
                f"{run.evals_per_s / peak:.3f} of peak ({where})" if peak else "no peak (phase 1 missing)",
                busy_text(busy),
                f"mean batch {run.batch:.0f}; {run.evals_per_s / pure:.2f} of {path} at that batch ({pure:,.0f}/s); "
                f"{run.outside_us:.1f} us/eval outside the net; {run.games} games ended in {run.seconds:.0f} s"))
        del net
        ctx.free_gpu()
    workers = plan.pool_workers or default_workers(ctx.device)
    net_cfg = NetConfig.from_name(plan.nets[0])
    setting = f"pool of {workers} worker processes x {SelfPlayConfig().concurrent_games} games (as training plays)"
    if time.perf_counter() + plan.selfplay_s + 5 > end:  # the warm-up's 5 s
        ctx.report.add(Row("self-play", net_cfg.name, setting, "skipped", note="the phase's time budget ran out"))
        return
    state = weights_dict(build_network(net_cfg, seed=0), net_cfg)["state_dict"]
    t0 = time.time()
    row, _ = bench_scale.bench_selfplay(workers, net_cfg, state, SelfPlayConfig(), 10**6, ctx.device,
                                        seconds=plan.selfplay_s)
    busy = ctx.sampler.mean(time.time() - row["seconds"], time.time())
    peak, where = ctx.peaks.get(net_cfg.name, (None, ""))
    raw.append({"net": net_cfg.name, "pool_workers": workers, **row, "peak": peak, "busy": busy,
                "warm_up_and_timed_s": time.time() - t0})
    ctx.report.add(Row("self-play", net_cfg.name, setting, f"{row['evals_s']:,.0f} evals/s",
                       f"{row['evals_s'] / peak:.3f} of peak ({where})" if peak else "no peak (phase 1 missing)",
                       busy_text(busy), f"{row['games']} games ended in {row['seconds']:.0f} s"))


def phase_learner(ctx: Context) -> None:
    plan, raw = ctx.plan, ctx.report.raw.setdefault("learner", [])
    end = time.perf_counter() + ctx.budget("learner")
    torch.set_num_threads(1)
    net_cfg = NetConfig.from_name(plan.nets[0])
    state = weights_dict(build_network(net_cfg, seed=0), net_cfg)["state_dict"]
    sp_cfg = SelfPlayConfig(max_plies=plan.learner_plies)
    _, games = bench_scale.bench_selfplay(1, net_cfg, state, sp_cfg, plan.learner_games, ctx.device)
    if not games:
        raise RuntimeError("self-play gave no games to learn from")
    replay = ReplayWindow()
    replay.add(ReplayChunk.from_games("bench", games))
    torch.set_num_threads(cpu_count())  # the learner gets the whole machine, as in a run
    setting = f"batch {plan.learner_batch}, {plan.learner_steps} steps each"
    for i, net_name in enumerate(plan.nets):
        name = NetConfig.from_name(net_name).name
        if i and time.perf_counter() > end:
            ctx.report.add(Row("learner", name, setting, "skipped", note="the phase's time budget ran out"))
            continue
        lrn = bench_scale.bench_learner(NetConfig.from_name(net_name), replay, plan.learner_steps, plan.learner_batch,
                                        ctx.device)
        raw.append({"net": name, "batch": plan.learner_batch, "window_positions": replay.train_positions, **lrn})
        ctx.report.add(Row("learner", name, setting,
                           f"{lrn['learner_pos_s']:,.0f} positions/s (raw loop {lrn['raw_pos_s']:,.0f})",
                           f"{lrn['ratio']:.2f} learner/raw",
                           note=f"{lrn['learner_ms']:.1f} vs {lrn['step_ms']:.1f} ms/step (medians; of total times "
                                f"{lrn['mean_ratio']:.2f}); sampling a batch {lrn['data_ms']:.1f} ms"))
        ctx.free_gpu()


CYCLE_START = re.compile(r"\[TRAIN\] cycle (\d+): self-play")
CYCLE_PLAYED = re.compile(r"\[TRAIN\] cycle (\d+): \d+ games, \d+ positions in")
CYCLE_LOSS = re.compile(r"\[LOSS\] cycle (\d+):")


def cycle_times(lines: list[tuple[float, str]]) -> dict[int, dict[str, float]]:
    """Per cycle, seconds of self-play (start line to the games line) and backprop (to the loss line), from
    ``(arrival time, text)`` of the trainer's log lines."""
    seen: dict[int, dict[str, float]] = {}
    for t, text in lines:
        for key, pattern in (("start", CYCLE_START), ("played", CYCLE_PLAYED), ("loss", CYCLE_LOSS)):
            m = pattern.search(text)
            if m:
                seen.setdefault(int(m[1]), {})[key] = t
    out = {}
    for cycle, t in seen.items():
        if {"start", "played", "loss"} <= t.keys():
            out[cycle] = {"selfplay": t["played"] - t["start"], "backprop": t["loss"] - t["played"]}
    return out


def training_summary(rows: list[dict], times: dict[int, dict[str, float]]) -> dict:
    """Cycles, seconds a cycle and the shares of a cycle's time, from metrics.jsonl rows and :func:`cycle_times`."""
    if not rows:
        return {"cycles": 0}
    total = sum(r.get("seconds") or 0.0 for r in rows) or 1e-9
    measure = sum(r.get("measure_seconds") or 0.0 for r in rows)
    timed = [times[r["cycle"]] for r in rows if r.get("cycle") in times]
    timed_total = sum(r.get("seconds") or 0.0 for r in rows if r.get("cycle") in times) or 1e-9
    selfplay = sum(t["selfplay"] for t in timed) / timed_total if timed else None
    backprop = sum(t["backprop"] for t in timed) / timed_total if timed else None
    rated = [r for r in rows if r.get("elo_cycle") is not None]
    return {"cycles": len(rows), "last_cycle": rows[-1].get("cycle"), "seconds_per_cycle": total / len(rows),
            "selfplay_share": selfplay, "backprop_share": backprop, "measure_share": measure / total,
            "rated_commits": len(rated), "rating_lag": (sum(r["cycle"] - r["elo_cycle"] for r in rated) / len(rated)
                                                         if rated else None),
            "promotions": sum(bool(r.get("best")) for r in rows),
            "games": sum(r.get("games") or 0 for r in rows), "steps": rows[-1].get("steps"),
            "last_elo": next((r.get("elo") for r in reversed(rows) if r.get("elo") is not None), None)}


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def run_training(ctx: Context, seconds: float, hub: Path) -> tuple[int | None, list[tuple[float, str]], bool]:
    """``l4demons train`` into ``hub`` for ``seconds``; returns its exit code, timed log lines, and whether it
    had to be stopped."""
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "l4demons", "train", "--hub", str(hub), "--device", ctx.device,
           "--hours", f"{seconds / 3600:.6f}", *ctx.plan.train_flags]
    log.info("[GPU] %s", " ".join(cmd[1:]))
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.time(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stopped = False
    try:
        proc.wait(timeout=seconds + ctx.plan.train_grace_s)
    except subprocess.TimeoutExpired:
        stopped = True
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=ctx.plan.stop_grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    return proc.returncode, lines, stopped


def phase_training(ctx: Context, minutes: float) -> None:
    left = ctx.deadline - time.perf_counter() - ctx.plan.train_grace_s - ctx.plan.stop_grace_s
    seconds = min(minutes * 60, left)
    setting = f"l4demons train --device {ctx.device} {' '.join(ctx.plan.train_flags)}".rstrip()
    if seconds < 10:
        ctx.report.add(Row("training", ctx.plan.nets[0], setting, "skipped",
                           note=f"only {max(0.0, left):.0f} s of the run's budget left"))
        return
    out = ctx.report.out
    out.mkdir(parents=True, exist_ok=True)
    hub = Path(tempfile.mkdtemp(prefix="l4d-gpu-hub-"))
    try:
        t0, wall0 = time.time(), time.perf_counter()
        rc, lines, stopped = run_training(ctx, seconds, hub)
        wall = time.perf_counter() - wall0
        busy = ctx.sampler.mean(t0, time.time())
        (out / "train.log").write_text("\n".join(text for _, text in lines) + "\n")
        from l4demons.hub.local import LocalHub

        local = LocalHub(hub)
        paths = {name: local.download(name) for name in (METRICS_FILE, BEST_FILE, MODEL_FILE)}
        for name, path in paths.items():
            if path is not None:
                shutil.copyfile(path, out / name)
        rows, best_path = read_metrics(paths[METRICS_FILE]), paths[BEST_FILE]
        summary = training_summary(rows, cycle_times(lines))
        ctx.report.raw["training"] = {"seconds_budget": seconds, "wall_s": wall, "returncode": rc,
                                      "stopped_by_bench": stopped, "busy": busy, "model_best": best_path is not None,
                                      "command": setting, **summary}
        net = next((m[1] for _, text in lines if (m := re.search(r"network (\S+)", text))), ctx.plan.nets[0])
        status = "" if rc == 0 and not stopped else f"exit code {rc}{', stopped by SIGINT' if stopped else ''}: " + \
            " / ".join(text for _, text in lines[-3:])
        cycles = summary["cycles"]
        ctx.report.add(Row(
            "training", net, f"{setting}, {seconds / 60:.1f} min",
            f"{cycles} cycles in {wall:.0f} s wall" + (f", {summary['seconds_per_cycle']:.1f} s/cycle" if cycles else ""),
            (f"self-play {share(summary['selfplay_share'])}, backprop {share(summary['backprop_share'])}, "
             f"measuring beside it {share(summary['measure_share'])} of a core") if cycles else "",
            busy_text(busy),
            (f"{summary['games']} games, {summary['steps']} steps, last Elo {summary['last_elo']}, "
             f"{summary['rated_commits']} commits with a new Elo (mean lag "
             f"{'n/a' if summary['rating_lag'] is None else format(summary['rating_lag'], '.1f')} cycles), "
             f"{summary['promotions']} promotions; " if cycles else "")
            + f"model_best.pt: {'yes, copied to ' + str(out / BEST_FILE) if best_path is not None else 'no'}"
            + (f" (the last {MODEL_FILE} copied to {out / MODEL_FILE})" if paths[MODEL_FILE] and best_path is None else "")
            + (f"; {status[:400]}" if status else "")))
    finally:
        shutil.rmtree(hub, ignore_errors=True)


# -- the run ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke run of 1-2 minutes")
    ap.add_argument("--out", default="gpu_out", help="folder for gpu_table.md, gpu.json, model_best.pt, "
                                                    "metrics.jsonl and train.log (default gpu_out)")
    ap.add_argument("--minutes", type=float, default=None, help="training budget (default 3; 0.3 with --quick)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole run (default 450; 180 with --quick)")
    ap.add_argument("--nets", default=None, help="comma-separated network sizes (default small,medium; "
                                                 "tiny,small with --quick)")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"which phases, comma-separated ({','.join(PHASES)})")
    ap.add_argument("--compile", action="store_true", help="measure the torch.compile backend too (minutes on a GPU)")
    args = ap.parse_args(argv)
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        ap.error(f"unknown phase(s) {', '.join(sorted(unknown))}: use {', '.join(PHASES)}")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else Plan()
    changes: dict = {}
    if args.nets:
        changes["nets"] = tuple(args.nets.split(","))
    if args.minutes is not None:
        changes["minutes"] = args.minutes
    if args.budget is not None:
        changes["total_s"] = args.budget
    return dataclasses.replace(plan, **changes)


def describe_machine(device: str) -> dict:
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "none (cpu run)"
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device, "device_name": gpu,
            "cpus": os.cpu_count(), "cpus_usable": cpu_count(), "compiled_core": core.enabled(),
            "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    t_start = time.perf_counter()
    plan = make_plan(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU here (use --device cpu for a smoke run)")
    machine = describe_machine(args.device)
    title = (f"bench/gpu.py: torch {machine['torch']} (CUDA {machine['cuda']}), device {args.device} = "
             f"{machine['device_name']}, {machine['cpus']} CPUs ({machine['cpus_usable']} usable), compiled core "
             f"{'used' if machine['compiled_core'] else 'NOT built: the pure-Python search ran'}")
    print(title, flush=True)
    report = Report(Path(args.out), title)
    report.raw.update(machine=machine, plan=dataclasses.asdict(plan), argv=sys.argv[1:] if argv is None else argv)
    report.add(Row("setup", "", "compiled core (l4demons.core.enabled())", "used" if machine["compiled_core"] else
                   "not built", note="" if machine["compiled_core"] else "python setup.py build_ext --inplace"))
    index = (torch.device(args.device).index or 0) if args.device.startswith("cuda") else -1
    sampler = BusySampler(index)
    if index >= 0:
        sampler.start()
    report.raw["busy_source"] = sampler.source
    backends = [b for b in bench_inference.default_backends(args.device) if args.compile or b != "compile"]
    ctx = Context(args.device, plan, report, sampler, backends, deadline=t_start + plan.total_s)
    phases: dict[str, Callable[[], None]] = {
        "inference": lambda: phase_inference(ctx), "selfplay": lambda: phase_selfplay(ctx),
        "learner": lambda: phase_learner(ctx), "training": lambda: phase_training(ctx, plan.minutes)}
    try:
        for name in args.phases.split(","):
            t0 = time.perf_counter()
            log.info("[GPU] phase %s (%.0f s into the run)", name, t0 - t_start)
            try:
                phases[name]()
            except Exception as e:  # noqa: BLE001 - the table still comes out; the phase's cell says why
                report.add(Row(name, "", "", "failed", note=f"{type(e).__name__}: {str(e)[:300]}"))
                report.raw.setdefault("errors", {})[name] = traceback.format_exc()
                log.error("[GPU] phase %s failed:\n%s", name, traceback.format_exc())
            report.raw.setdefault("phase_seconds", {})[name] = time.perf_counter() - t0
            report.save()
    finally:
        sampler.stop()
    report.raw["busy_samples"] = len(sampler.samples)
    report.raw["total_s"] = time.perf_counter() - t_start
    report.save()
    print()
    print(report.table())
    print(f"{report.raw['total_s']:.0f} s in all; GPU busy from {sampler.source}; table and raw numbers in "
          f"{report.out}/gpu_table.md and {report.out}/gpu.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
