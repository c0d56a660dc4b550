"""Helpers: run the real ``l4demons`` entry point with a tiny budget, in a subprocess or in this process.

A child process where the process is the point (signals, kill -9, two
trainers at once, settings a client reads once per process); otherwise
:func:`run_here` (a whole run) or :func:`main_in_process` (an error the CLI
reports before any training).

Every child gets its own data, cache and HF folders under ``tmp_path`` (a
"machine"): the outbox and the HF cache of one test never meet another's.
:func:`hf_env` points a child at the fake Hub of ``tests/hub/fake_hf.py``.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))  # the fake Hub, whose client settings these are
from fake_hf import CLIENT_ENV  # noqa: E402

from l4demons import cli  # noqa: E402
from l4demons.checkpoint import BEST_FILE, METRICS_FILE, MODEL_FILE, STATE_FILE, TrainingState, read_metrics, replay_file  # noqa: E402
from l4demons.network import load_network  # noqa: E402
from l4demons.replay import ReplayChunk  # noqa: E402

# A configuration that trains in seconds: a tiny net, short games, no Elo games, a commit per cycle.
FAST = ["--net", "tiny", "--elo-seconds", "0", "--simulations", "4", "--fast-simulations", "2",
        "--max-plies", "30", "--workers", "1", "--concurrent-games", "8", "--batch-size", "32",
        "--cycle-seconds", "0", "--commit-interval", "0"]
FAST_RESUME = [a for a in FAST if a not in ("--net", "tiny")]

REPO = "test/bot"
URI = f"hf://{REPO}"
"""The repository the tests train in on the fake Hub."""

CYCLE_MESSAGE = re.compile(r"^Training cycle (\d+), Elo ~(\S+), Loss (\d+\.\d+|n/a)")
RESUMING = re.compile(r"resuming from commit ([0-9a-f]{8}): cycle (\d+)")


def cli_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("L4D_HUB", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_CACHE"):
        env.pop(name, None)
    env.update(PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(tmp_path / "xdg"), OMP_NUM_THREADS="1",
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), HF_HOME=str(tmp_path / "hf-home"))
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def hf_env(fake, tmp_path: Path, machine: str = "a", token: str | None = "hf_write") -> dict[str, str]:
    """Extra environment of a child on ``machine`` talking to ``fake`` (its own HF cache and outbox)."""
    home = tmp_path / f"machine-{machine}"
    env = dict(CLIENT_ENV, HF_ENDPOINT=fake.endpoint, HF_HOME=str(home / "hf-home"),
               XDG_CACHE_HOME=str(home / "cache"))
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_cli(args: list[str], tmp_path: Path, timeout: float = 300, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "l4demons", *args], capture_output=True, text=True,
                          env=cli_env(tmp_path, env), timeout=timeout)


def main_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """``l4demons.cli.main(args)`` in this process: (exit status, stdout, stderr), with pytest's ``capsys``.

    A usage error argparse reports by ``SystemExit`` counts as its status; the logging set-up that
    ``main`` makes (to the captured stdout) is undone afterwards. What the test printed before the call
    is not part of the result.
    """
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        try:
            code = cli.main(args)
        except SystemExit as e:
            code = e.code
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_here(args: list[str], tmp_path: Path, monkeypatch, capsys, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    """:func:`run_cli` in this process: the child's environment is set for the call and then restored.

    For every run where a process is not the point (it is for signals, kill -9, two trainers at once
    and the Xet client's settings): each run builds its own hub client and trainer and reads only
    what earlier runs left on disk, as a new process would, without paying for a Python and torch
    start-up.
    The HF client's settings that it reads once at import (cache folder, token file, Xet, offline)
    are set as the child would read them.
    """
    from huggingface_hub import constants as hf_constants
    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class of that name

    full = cli_env(tmp_path, env)
    with monkeypatch.context() as m:
        for name in set(os.environ) - set(full):
            m.delenv(name)
        for name, value in full.items():
            m.setenv(name, value)
        m.setattr(hf_constants, "HF_HUB_CACHE", os.path.join(full["HF_HOME"], "hub"))
        m.setattr(hf_constants, "HF_TOKEN_PATH", os.path.join(full["HF_HOME"], "token"))
        for name in ("HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE"):
            m.setattr(hf_constants, name, full.get(name, "0") == "1")
        if full.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":  # no bars on stderr, whoever imported the client first
            m.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", True)
        code, out, err = main_in_process(args, capsys)
    return subprocess.CompletedProcess(args, code, out, err)


def one_line_error_in_process(args: list[str], capsys) -> str:
    """The single stderr line of an in-process run that must have failed cleanly with status 2."""
    code, out, err = main_in_process(args, capsys)
    assert code == 2, out[-3000:] + err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def start_cli(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "l4demons", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env(tmp_path, env))


def wait_for_line(proc: subprocess.Popen, needle: str, seen: list[str]) -> str:
    """Read the child's output until a line contains ``needle`` (the synchronisation point)."""
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"child exited before printing {needle!r}:\n{''.join(seen)}")


def ok(result: subprocess.CompletedProcess) -> str:
    """The stdout of a run that must have exited 0 (its output in the failure message otherwise)."""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a run that must have failed cleanly with status 2."""
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def load_files(fake, commit_id: str, tmp_path: Path, repo: str = REPO) -> TrainingState:
    """Every file of a fake Hub commit loads: weights, training state, metrics, the replay chunks it names."""
    files = fake.repos[repo].commits[commit_id].files
    out = tmp_path / f"files-{commit_id[:8]}"
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    load_network(out / MODEL_FILE)
    if BEST_FILE in files:
        load_network(out / BEST_FILE)
    state = TrainingState.load(out / STATE_FILE)
    for name in state.replay_chunks:
        ReplayChunk.load(out / replay_file(name))
    rows = read_metrics(out / METRICS_FILE)
    assert [r["cycle"] for r in rows] == list(range(1, state.cycle + 1))
    return state
