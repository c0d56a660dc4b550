"""Benchmark of the HTTP server: latency beyond the search budget, and requests per second.

Starts ``serve.py`` as a user would (a subprocess on a free port), waits for
the model, then:

1. one client, one request at a time, at each ``--timeleft``: how much
   longer than its search budget a move takes, seen by the client (p50, p99
   of wall time minus the budget) and by the server (``time_taken`` minus
   the budget);
2. several clients at once (``--clients``), each posting moves in a loop for
   ``--seconds``: requests per second in all, and the latency beyond budget
   under that load. The bot evaluates the leaves of concurrent searches in
   one network call, so each request keeps its own budget; the nodes each
   move searched (from the answer's ``logs``) show what that budget buys
   when the network calls are shared.

Positions are from random games (a fixed seed), sent as PGN.

    python bench/serve.py                                    # untrained small net, CPU
    python bench/serve.py --hub hf://me/L4Demons --device cuda
    python bench/serve.py --threads 1 --clients 1 2 4 8 --timeleft 0 3000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import chess
import chess.pgn
import httpx

ROOT = Path(__file__).resolve().parents[1]
try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from l4demons.bot import TimePolicy  # noqa: E402


def budget_ms(time_left: float) -> float:
    """The server's search budget for ``time_left`` (the default policy, as serve.py uses)."""
    return TimePolicy().budget_ms(time_left)


def positions(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        board = chess.Board()
        for _ in range(rng.randrange(0, 80)):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(rng.choice(moves))
        if not board.is_game_over():
            out.append(str(chess.pgn.Game.from_board(board)))
    return out


_NODES = re.compile(r"\b(\d+) nodes\b")


def nodes_of(answer: dict) -> int:
    """Network evaluations the move searched, from the answer's ``logs`` (0 when it did not search)."""
    m = _NODES.search(answer.get("logs") or "")
    return int(m[1]) if m else 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def start_server(args: argparse.Namespace, on_listening: Callable[[], None] | None = None,
                 wait_ready: bool = True) -> tuple[subprocess.Popen, str]:
    """serve.py on a free port; returns once loading ended (ready, or failed when ``wait_ready`` is off).

    ``on_listening`` is called as soon as the first ``POST /`` is answered.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, str(ROOT / "serve.py"), "--host", "127.0.0.1", "--port", str(port), "--device", args.device,
           "--file", args.file, "-q"]
    cmd += ["--hub", args.hub] if args.hub else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += ["--allow-random", "--random-net", "small"] if args.allow_random else []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    listening, health = False, {"state": "loading"}
    while time.monotonic() < deadline and health["state"] == "loading":
        try:
            if not listening:
                httpx.post(url + "/", timeout=1)
                listening = True
                if on_listening:
                    on_listening()
            health = httpx.get(url + "/health", timeout=1).json()
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise SystemExit(f"serve.py exited:\n{proc.stderr.read()}") from None
        time.sleep(0.01 if not listening else 0.2)
    if wait_ready and health["state"] != "ready":
        proc.terminate()
        raise SystemExit(f"model not ready: {health.get('error')}")
    return proc, url


def one_client(url: str, pgns: list[str], time_left: int, moves: int) -> dict:
    client_over, server_over, nodes = [], [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        c.post("/move", json={"pgn": pgns[0], "timeleft": time_left})  # connection set up
        for i in range(moves):
            t0 = time.perf_counter()
            r = c.post("/move", json={"pgn": pgns[i % len(pgns)], "timeleft": time_left})
            wall = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            b = budget_ms(time_left)
            client_over.append(wall - b)
            server_over.append(r.json()["time_taken"] - b)
            nodes.append(nodes_of(r.json()))
    return {"client": client_over, "server": server_over, "nodes": nodes}


def many_clients(url: str, pgns: list[str], time_left: int, clients: int, seconds: float) -> dict:
    over: list[float] = []
    nodes: list[int] = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(k: int) -> None:
        rng = random.Random(k)
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = c.post("/move", json={"pgn": rng.choice(pgns), "timeleft": time_left})
                wall = (time.perf_counter() - t0) * 1000
                r.raise_for_status()
                with lock:
                    over.append(wall - budget_ms(time_left))
                    nodes.append(nodes_of(r.json()))
                    done[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": done[0] / (time.perf_counter() - t0), "over": over, "nodes": nodes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hub", default=None, help="hub with weights (default: $L4D_HUB, else the local hub)")
    parser.add_argument("--file", default="model_best.pt")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads of the server")
    parser.add_argument("--allow-random", action="store_true", default=None,
                        help="serve an untrained network when the hub has none (default: when --hub is not given)")
    parser.add_argument("--timeleft", type=int, nargs="+", default=[0, 3000, 30000], help="clocks to test, ms")
    parser.add_argument("--moves", type=int, default=100, help="requests per clock in part 1")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent clients in part 2")
    parser.add_argument("--concurrent-timeleft", type=int, default=3000, help="clock of every request in part 2, ms")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each part-2 run")
    args = parser.parse_args()
    if args.allow_random is None:
        args.allow_random = args.hub is None and not os.environ.get("L4D_HUB")

    proc, url = start_server(args)
    try:
        health = httpx.get(url + "/health").json()
        what = "untrained" if health["origin"] == "random" else f"{health['file']}@{(health['commit'] or '?')[:8]}"
        print(f"`python bench/serve.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
        print(f"model: {what} {health['net']} on {health['device']}; torch threads: {args.threads or 'default'}; "
              f"{os.cpu_count()} CPUs")
        pgns = positions(200)
        print("\n### Latency beyond the search budget (one client)\n")
        print("| timeleft (ms) | budget (ms) | moves | nodes/move p50 | client p50 | client p99 | server p50 | server p99 |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tl in args.timeleft:
            moves = args.moves if budget_ms(tl) < 300 else max(10, args.moves // 5)
            r = one_client(url, pgns, tl, moves)
            print(f"| {tl} | {budget_ms(tl):.0f} | {moves} | {statistics.median(r['nodes']):.0f} "
                  f"| {pct(r['client'], .5):+.1f} | {pct(r['client'], .99):+.1f} "
                  f"| {pct(r['server'], .5):+.1f} | {pct(r['server'], .99):+.1f} |")
        tl = args.concurrent_timeleft
        print(f"\n### Several clients at once (timeleft {tl} ms, budget {budget_ms(tl):.0f} ms, {args.seconds:g} s each)\n")
        print("| clients | requests/s | nodes/move p50 | nodes/move vs 1 client | beyond budget p50 (ms) | p99 (ms) |")
        print("|---:|---:|---:|---:|---:|---:|")
        alone = None
        for n in args.clients:
            r = many_clients(url, pgns, tl, n, args.seconds)
            nodes = statistics.median(r["nodes"])
            alone = alone or nodes
            print(f"| {n} | {r['rps']:.1f} | {nodes:.0f} | {nodes / alone:.2f} | {statistics.median(r['over']):+.1f} "
                  f"| {pct(r['over'], .99):+.1f} |")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
