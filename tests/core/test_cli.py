"""The command line as a user meets it: help text, flags from settings, ``serve``, pipes, install files.

In-process through :func:`l4demons.cli.main` wherever a process is not the
point; a child process only where the pipe or the wrapper script is.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from l4demons import cli
from l4demons.server.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[2]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_help_is_plain_text_with_a_line_for_every_flag(command: str) -> None:
    sub = _subparsers()[command]
    text = sub.format_help()
    for markup in ("``", ":class:", ":func:", ":mod:", "None:", "%(default)"):
        assert markup not in text, f"{command} --help shows {markup!r}"
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and action.help.strip(), f"{command} {action.option_strings[0]} has no help"


@pytest.mark.parametrize("argv", [["-q", "history"], ["history", "-q"], ["history", "--quiet"], ["-q", "serve"],
                                  ["serve", "-q"], ["train", "-q"], ["uci", "-q"]])
def test_quiet_before_or_after_the_subcommand(argv: list[str]) -> None:
    assert cli.build_parser().parse_args(argv).quiet is True


def test_quiet_is_off_by_default() -> None:
    assert cli.build_parser().parse_args(["history"]).quiet is False


def test_serve_flags_come_from_serve_settings() -> None:
    sub = _subparsers()["serve"]
    flags = {s for a in sub._actions for s in a.option_strings}
    for f in dataclasses.fields(ServeSettings):
        assert "--" + f.name.replace("_", "-") in flags, f"ServeSettings.{f.name} has no l4demons serve flag"


def _serve_settings(monkeypatch, argv: list[str]) -> tuple[int, ServeSettings | None]:
    seen: list[ServeSettings] = []
    monkeypatch.setattr("l4demons.server.run.serve", lambda settings, quiet=False: seen.append(settings))
    code = cli.main(["serve", *argv])
    return code, (seen[0] if seen else None)


def test_serve_passes_given_flags_and_reads_the_port_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SERVE_PORT", "6001")
    code, settings = _serve_settings(monkeypatch, ["--host", "127.0.0.1", "--max-moves", "3", "--no-warmup"])
    assert code == 0 and (settings.port, settings.host, settings.max_moves, settings.warmup) == (6001, "127.0.0.1", 3, False)
    code, settings = _serve_settings(monkeypatch, ["--port", "6002"])
    assert code == 0 and settings.port == 6002 and settings.max_moves == ServeSettings().max_moves


@pytest.mark.parametrize("argv, message", [(["--port", "99999"], "port 99999 is not a port number"),
                                           (["--max-moves", "0"], "--max-moves must be positive")])
def test_serve_bad_input_is_one_line(monkeypatch, capsys, argv: list[str], message: str) -> None:
    code, settings = _serve_settings(monkeypatch, argv)
    err = capsys.readouterr().err
    assert code == 2 and settings is None
    assert err.startswith("l4demons: error: ") and message in err and err.count("\n") == 1


def test_serve_py_is_the_same_door(tmp_path: Path) -> None:
    """The repository's serve.py runs ``l4demons serve`` (an error before any heavy import shows it)."""
    proc = subprocess.run([sys.executable, str(ROOT / "serve.py"), "--port", "70000"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr == "l4demons: error: port 70000 is not a port number (0-65535)\n"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``l4demons history | head``: the reader is gone before the first line; no traceback, SIGPIPE's status."""
    proc = subprocess.Popen([sys.executable, "-m", "l4demons", "history", "--hub", str(tmp_path / "hub")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # before the child can have written anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_make_installs_the_cpu_build_without_a_gpu_and_trains_on_the_default_hub() -> None:
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", *args], capture_output=True, text=True, cwd=ROOT, check=True).stdout

    cpu = dry("torch", "GPU=")
    assert re.search(r'pip install -q "torch==[\d.]+\+cpu"', cpu), cpu
    assert "+cpu" not in dry("torch", "GPU=yes")
    assert "--hub" not in dry("train", "HUB=")  # the hub of every later `l4demons` command in the README
    assert "--hub /tmp/h" in dry("train", "HUB=/tmp/h")


def test_the_license_is_the_one_pyproject_names() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert re.search(r'license = \{ text = "MIT" \}', (ROOT / "pyproject.toml").read_text())


def test_progress_redraws_on_a_terminal_and_logs_a_line_now_and_then_into_a_file(caplog) -> None:
    import io
    import logging

    from tqdm import tqdm

    from l4demons.progress import LineProgress, progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress(10, "[T] x", stream=Terminal()), tqdm)
    now = [0.0]
    into_file = io.StringIO()
    caplog.set_level(logging.INFO, logger="l4demons.progress")
    with progress(1000, "[TRAIN] warm start", "step", stream=into_file, every=60, clock=lambda: now[0]) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(1000):  # 1000 steps over 250 s of the fake clock: a line at 60, 120, 180, 240 s
            now[0] += 0.25
            bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert into_file.getvalue() == "" and "\r" not in "".join(lines)
    assert len(lines) == 5 and lines[0].startswith("[TRAIN] warm start: 240/1000 step in 60s")
    assert lines[-1].startswith("[TRAIN] warm start: 1000/1000 step in 250s")
    caplog.clear()
    with progress(5, "[TRAIN] backprop", stream=into_file, clock=lambda: now[0]) as bar:
        bar.update(5)  # short work writes no line: the caller logs its result
    assert caplog.records == []


def test_uci_flags_come_from_engine_options_and_set_the_first_values(monkeypatch, capsys) -> None:
    import io

    from l4demons.uci_protocol import EngineOptions

    flags = {s for a in _subparsers()["uci"]._actions for s in a.option_strings}
    for f in dataclasses.fields(EngineOptions):
        assert "--" + f.name.replace("_", "-") in flags, f"EngineOptions.{f.name} has no l4demons uci flag"
    monkeypatch.setattr(sys, "stdin", io.StringIO("uci\nquit\n"))
    assert cli.main(["uci", "--show-wdl", "--move-overhead", "10"]) == 0
    out = capsys.readouterr().out
    assert "option name UCI_ShowWDL type check default true" in out
    assert re.search(r"option name Move Overhead type spin default 10 ", out), out
