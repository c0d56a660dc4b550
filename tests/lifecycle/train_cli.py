"""Helpers: run the real ``l4demons`` entry point in a subprocess with a tiny budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A configuration that trains in seconds: a tiny net, short games, no Elo games.
FAST = ["--net", "tiny", "--elo-seconds", "0", "--simulations", "4", "--fast-simulations", "2",
        "--max-plies", "30", "--workers", "1", "--concurrent-games", "8", "--batch-size", "32"]
FAST_RESUME = [a for a in FAST if a not in ("--net", "tiny")]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(tmp_path / "xdg"), OMP_NUM_THREADS="1")
    env.pop("L4D_HUB", None)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: list[str], tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "l4demons", *args], capture_output=True, text=True,
                          env=cli_env(tmp_path), timeout=timeout)


def start_cli(args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "l4demons", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env(tmp_path))


def wait_for_line(proc: subprocess.Popen, needle: str, seen: list[str]) -> str:
    """Read the child's output until a line contains ``needle`` (the synchronisation point)."""
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"child exited before printing {needle!r}:\n{''.join(seen)}")
