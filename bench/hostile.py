"""Benchmark of the bot's doors under hostile input: the hardening targets, each measured.

1. ``serve.py`` as a user runs it (a subprocess, an untrained net):
   seconds from process start to the first ``POST /`` answer; a 20 MB
   chunked body; ``/health`` and ``POST /`` latency while clients keep
   sending hostile PGNs (1 MB of nested variations, the worst texts under
   the PGN cap) and while 64 moves at a 30 s clock are in flight, each
   against the same latency measured idle in the same run (the ratio); the
   64 moves' statuses and nodes searched; every answer checked for a local
   path or a traceback.
2. 10,000 generated requests (``tests/serve/request_strategies.py``,
   hypothesis) against the app in-process: statuses; a 5xx fails.
3. A damaged weights file (``se_ratio`` 0; a 1,024-channel, 64-block net)
   through every door: ``serve.py`` (``/health`` and its log), ``l4demons
   uci``, ``l4demons elo``, ``l4demons train`` resuming from a hub that holds
   it, and the lichess-bot adapter: one line, never a traceback.

    python bench/hostile.py
    python bench/hostile.py --requests 2000 --load-seconds 3
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "tests" / "serve")]
try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from serve import nodes_of, pct, positions, start_server  # noqa: E402  (bench/serve.py)

LEAKS = re.compile(r"Traceback|File \"|/home/|/tmp/|/root/|/work/|/usr/|site-packages|\w+Error: ")
"""What no answer may hold: a traceback, a local path, an exception's own text."""


class Prober:
    """Measures ``GET /health`` and ``POST /`` latency every 20 ms until stopped.

    It runs in a process of its own (this file with ``--probe``): in this process, the threads that
    make the load would hold the interpreter and delay the probes themselves.
    """

    def __init__(self, url: str) -> None:
        self.url, self.ms, self.failures = url, [], 0
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> Prober:
        self._proc = subprocess.Popen([sys.executable, __file__, "--probe", self.url], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout.readline().strip() == "probing"
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._proc.communicate("stop\n", timeout=60)
        for line in out.split():
            if line == "failed":
                self.failures += 1
            else:
                self.ms.append(float(line))


def probe(url: str) -> int:
    """The prober's process: probe until a line arrives on stdin, then print each latency (ms) or ``failed``."""
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    results = []
    with httpx.Client(base_url=url, timeout=10) as c:
        print("probing", flush=True)
        while not stop.is_set():
            for method, path in (("GET", "/health"), ("POST", "/")):
                t0 = time.perf_counter()
                try:
                    c.request(method, path).raise_for_status()
                    results.append(f"{(time.perf_counter() - t0) * 1000:.2f}")
                except httpx.HTTPError:
                    results.append("failed")
            stop.wait(0.02)
    print("\n".join(results))
    return 0


def hostile_pgns() -> dict[str, str]:
    """PGNs a hostile client may send, by name."""
    nested = "1. e4 " + "(1. d4 " * 110_000 + ")" * 110_000  # about 1 MB
    return {
        "1 MB of nested variations": nested[:990_000],
        "99 KB of nested variations": nested[:99_000],
        "99 KB of move numbers": "1. " * 33_000,
        "99 KB of NAGs (read whole)": "1. e4 " + "! " * 49_000,
        "99 KB of spaces after a comment (read whole)": "1. e4 {c}" + " " * 99_000 + "e5",
        "4,000-ply mainline": "1. Nf3 Nf6 2. Ng1 Ng8 " * 1000,
    }


def flood(url: str, pgn: str, seconds: float, clients: int, answers: list) -> dict[int, int]:
    """``clients`` threads posting ``pgn`` for ``seconds``; statuses counted."""
    statuses: collections.Counter[int] = collections.Counter()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.perf_counter() < stop_at:
                r = c.post("/move", json={"pgn": pgn, "timeleft": 1000})
                statuses[r.status_code] += 1
                answers.append(r.text)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(statuses)


def concurrent_moves(url: str, n: int, timeleft: int, answers: list) -> tuple[collections.Counter, list[float], list[int]]:
    pgns = positions(n, seed=7)
    statuses: collections.Counter[int] = collections.Counter()
    taken, nodes = [], []
    barrier = threading.Barrier(n)

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            barrier.wait()
            r = c.post("/move", json={"pgn": pgns[k], "timeleft": timeleft})
            statuses[r.status_code] += 1
            answers.append(r.text)
            if r.status_code == 200:
                taken.append(r.json()["time_taken"])
                nodes.append(nodes_of(r.json()))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, taken, nodes


def chunked_413(url: str, megabytes: int) -> tuple[int, float]:
    def body():  # noqa: ANN202
        for _ in range(megabytes * 16):
            yield b" " * 65536

    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/move", content=body(), headers={"Content-Type": "application/json"})
    return r.status_code, time.perf_counter() - t0


def latency_row(name: str, probe: Prober, idle: float, extra: str) -> tuple[str, bool]:
    """A table row, and whether the targets held: p99 within 100 ms, none over 500 ms, none failed."""
    p50, p99, worst = pct(probe.ms, .5), pct(probe.ms, .99), max(probe.ms)
    ok = p99 <= 100 and worst <= 500 and not probe.failures
    return (f"| {name} | {len(probe.ms)} | {p50:.1f} | {p99:.1f} | {worst:.1f} | {p99 / idle:.1f} | {probe.failures} "
            f"| {'yes' if ok else 'NO'} | {extra} |"), ok


def part_server(args: argparse.Namespace) -> bool:
    answers: list[str] = []
    t0 = time.perf_counter()
    proc, url = start_server(argparse.Namespace(hub=None, file="model_best.pt", device="cpu", threads=args.threads,
                                                allow_random=True), on_listening=lambda: print(
        f"first POST / answered {time.perf_counter() - t0:.2f} s after the process started (contract: 1 s)"))
    ok = True
    try:
        with Prober(url) as idle:
            time.sleep(args.load_seconds)
        idle_p99 = pct(idle.ms, .99)
        print("\n### /health and POST / latency under load (ms; ratio: p99 against idle p99 of this run)\n")
        print("| while | probes | p50 | p99 | max | p99 vs idle | failed | p99 <= 100, max <= 500 | what the load got |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|")
        rows = [latency_row("idle", idle, idle_p99, "-")]
        with Prober(url) as probe:
            status, seconds = chunked_413(url, 20)
        ok &= status == 413 and seconds < 3
        rows.append(latency_row("a 20 MB chunked body", probe, idle_p99,
                                f"{status} in {seconds:.2f} s (target: 413 within 3 s)"))
        for name, pgn in hostile_pgns().items():
            with Prober(url) as probe:
                statuses = flood(url, pgn, args.load_seconds, 4, answers)
            ok &= max(statuses) < 500
            rows.append(latency_row(f"4 clients sending {name}", probe, idle_p99, f"statuses {statuses}"))
        with Prober(url) as probe:
            statuses, taken, nodes = concurrent_moves(url, args.moves, 30_000, answers)
        ok &= max(statuses) < 500 and sum(statuses.values()) == args.moves
        rows.append(latency_row(f"{args.moves} moves at a 30 s clock", probe, idle_p99,
                                f"statuses {dict(statuses)}; time_taken p50 {statistics.median(taken):.0f} ms, max "
                                f"{max(taken):.0f} ms; nodes/move p50 {statistics.median(nodes):.0f}, min {min(nodes)}"))
        for row, row_ok in rows:
            print(row)
            ok &= row_ok
        leaks = [a for a in answers if LEAKS.search(a)]
        ok &= not leaks
        print(f"\n{len(answers)} answers checked for a local path or a traceback: {len(leaks)} found"
              + (f", e.g. {leaks[0][:200]!r}" if leaks else ""))
    finally:
        proc.terminate()
        proc.wait(10)
    return ok


def part_generated(args: argparse.Namespace) -> bool:
    from hypothesis import HealthCheck, given, settings
    from request_strategies import requests
    from starlette.testclient import TestClient
    from test_serve_fuzz import FUZZ_SETTINGS, check_answer

    from l4demons.bot import Bot
    from l4demons.network import NetConfig
    from l4demons.server import ModelStore, create_app

    bot = Bot.random(NetConfig.from_name("tiny"), seed=3)
    bot.warmup()
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    with TestClient(create_app(FUZZ_SETTINGS, ModelStore.ready_with(bot, origin="random")),
                    raise_server_exceptions=False) as client:

        @settings(max_examples=args.requests, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(request=requests())
        def run(request: tuple) -> None:
            try:
                statuses[check_answer(client, *request)] += 1
            except AssertionError as e:
                statuses["failed"] += 1
                failures.append(str(e)[:300])

        t0 = time.perf_counter()
        run()
        seconds = time.perf_counter() - t0
    total = sum(statuses.values())
    print(f"\n### {total} generated requests (hypothesis, in-process, {seconds:.0f} s)\n")
    print("| status | requests | share |")
    print("|---|---:|---:|")
    for status, count in sorted(statuses.items(), key=lambda kv: str(kv[0])):
        print(f"| {status} | {count} | {count / total:.1%} |")
    fivexx = sum(c for s, c in statuses.items() if isinstance(s, int) and s >= 500)
    print(f"\n5xx: {fivexx}; failed checks: {len(failures)}" + (f", e.g. {failures[0]}" if failures else ""))
    return fivexx == 0 and not failures


def damaged_files(folder: Path) -> dict[str, Path]:
    import torch

    from l4demons.encoding import ENCODING_VERSION
    from l4demons.network import WEIGHTS_FORMAT

    files = {}
    base = {"blocks": 2, "channels": 32, "se": True, "se_ratio": 4, "value_hidden": 64, "encoding_version": ENCODING_VERSION}
    for name, config in (("se_ratio 0", {**base, "se_ratio": 0}), ("b64c1024", {**base, "blocks": 64, "channels": 1024})):
        path = folder / f"{name.replace(' ', '')}.pt"
        torch.save({"format": WEIGHTS_FORMAT, "config": config, "state_dict": {}}, path)
        files[name] = path
    return files


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def door_serve(path: Path, threads: int | None) -> tuple[str, str]:
    """(what the user sees, a verdict) for serve.py with ``--file path``."""
    proc, url = start_server(argparse.Namespace(hub=None, file=str(path), device="cpu", threads=threads,
                                                allow_random=False), wait_ready=False)
    try:
        health = httpx.get(url + "/health").json()
        move = httpx.post(url + "/move", json={"pgn": "", "timeleft": 1000})
    finally:
        proc.terminate()
        log = proc.communicate(timeout=10)[1]
    errors = [line for line in lines_of(log) if "not loaded" in line or "Traceback" in line]
    public = f"{health['error']} / {move.status_code}"
    good = health["state"] == "failed" and "Traceback" not in log and len(errors) == 1 and not LEAKS.search(
        health["error"] + move.text)
    return f"/health: {public}; log: {errors[0][:90] if errors else log[-90:]!r}", "one line" if good else "FAIL"


def door_process(command: list[str], stdin: str = "", env: dict | None = None) -> tuple[str, str]:
    """(what the user sees, a verdict): exit 2, no traceback, and the error in one last line."""
    proc = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    err = lines_of(proc.stderr)
    good = proc.returncode == 2 and err and "Traceback" not in proc.stderr and err[-1].startswith("l4demons")
    seen = f"exit {proc.returncode}; {len(err)} line(s) on stderr, the last: {err[-1][:100] if err else ''!r}"
    return seen, ("one line" if len(err) == 1 else "one line per commit tried") if good else "FAIL"


def damaged_hub(folder: Path, weights: Path) -> Path:
    """A local hub whose only commit holds ``weights`` as model.pt."""
    from l4demons.hub.local import LocalHub

    hub = LocalHub(folder / f"hub-{weights.stem}")
    hub.commit({"model.pt": weights}, "Training cycle 1, Elo ~n/a, Loss n/a", None)
    return hub.path


def door_lichess(path: Path) -> tuple[str, str]:
    from l4demons.lichess import LichessOptions, LichessPlayer

    try:
        LichessPlayer.from_options(LichessOptions(file=str(path), device="cpu"))
    except ValueError as e:
        text = str(e)
        return f"{type(e).__name__}: {text[:110]!r}", "one line" if "\n" not in text else "FAIL"
    return "loaded?!", "FAIL"


def part_damaged(args: argparse.Namespace) -> bool:
    ok = True
    print("\n### A damaged weights file through every door\n")
    print("| door | file | what the user sees | verdict |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in damaged_files(Path(tmp)).items():
            doors = {
                "serve.py": lambda: door_serve(path, args.threads),
                "l4demons uci": lambda: door_process(
                    [sys.executable, "-m", "l4demons", "uci", "--file", str(path), "--device", "cpu"], "uci\nisready\n"),
                "l4demons elo": lambda: door_process(
                    [sys.executable, "-m", "l4demons", "elo", "--file", str(path), "--games", "2"]),
                "l4demons train (resuming)": lambda: door_process(
                    [sys.executable, "-m", "l4demons", "train", "--hub", str(damaged_hub(Path(tmp), path)),
                     "--cycles", "0", "--elo-seconds", "0"], env={"XDG_CACHE_HOME": str(Path(tmp) / "cache")}),
                "lichess-bot adapter": lambda: door_lichess(path),
            }
            for door, run in doors.items():
                seen, verdict = run()
                ok &= verdict != "FAIL"
                print(f"| {door} | {name} | {seen.replace('|', '/')} | {verdict} |")
    return ok


def main() -> int:
    if sys.argv[1:2] == ["--probe"]:
        return probe(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="generated requests in part 2")
    parser.add_argument("--moves", type=int, default=64, help="concurrent moves at a 30 s clock")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="how long each hostile load runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server")
    parser.add_argument("--skip", nargs="*", default=[], choices=["server", "generated", "damaged"])
    args = parser.parse_args()
    print(f"`python bench/hostile.py {' '.join(sys.argv[1:])}`".replace(" `", "`") + f"; {os.cpu_count()} CPUs")
    results = {}
    for name, part in (("server", part_server), ("generated", part_generated), ("damaged", part_damaged)):
        if name not in args.skip:
            results[name] = part(args)
    print("\n" + ", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
