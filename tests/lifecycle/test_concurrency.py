"""Two trainers on one hub at the same time (local hub and the fake Hugging Face Hub).

Both start at once on an empty hub, so both race to make the initial
commit. Trainer A is then paused (SIGSTOP) in its first self-play until B
has finished, so A's first commit is certain to meet a hub that moved on:
the merge path runs every time, not only when the timing happens to
collide. The promise checked (docs/lifecycle.md, "Several trainers at once"):
both exit 0, and every cycle each trainer ran is committed (and in the
history) or named in its log as merged or dropped; no cycle number is
committed twice, and the metrics rows match the commits.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from l4demons.checkpoint import METRICS_FILE, MODEL_FILE, STATE_FILE, TrainingState, read_metrics, replay_file
from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE
from l4demons.network import load_network
from l4demons.replay import ReplayChunk

from train_cli import CYCLE_MESSAGE, FAST, REPO, URI, hf_env, load_files, start_cli, wait_for_line

pytestmark = pytest.mark.slow

RAN = re.compile(r"\[TRAIN\] cycle (\d+): self-play")
MERGED = re.compile(r"merged this machine's cycle ([\d, ]+) onto it as cycle (\d+)")
COMMITTED = re.compile(r"\[SAVE\] Training cycle (\d+), .* -> commit ([0-9a-f]{8})")
DROPPED = re.compile(r"dropped cycle ([\d, ]+) of")


def account(log: str) -> tuple[dict[int, str], list[str], int]:
    """Follow each cycle a trainer ran through its renumberings to its fate.

    Returns ``{cycle it ran: "committed" | "dropped"}``, the commit ids it
    made, and how many merges it did. Fails on a cycle left without a fate.
    """
    fate: dict[int, str] = {}
    commits: list[str] = []
    merges = 0
    ran = current = None
    for line in log.splitlines():
        if m := RAN.search(line):
            assert ran is None, f"cycle {ran} has no fate before cycle {m.group(1)} starts:\n{log}"
            ran = current = int(m.group(1))
        elif m := MERGED.search(line):
            assert current in [int(c) for c in m.group(1).split(", ")], line
            current, merges = int(m.group(2)), merges + 1
        elif m := COMMITTED.search(line):
            assert int(m.group(1)) == current, line
            fate[ran], ran = "committed", None
            commits.append(m.group(2))
        elif m := DROPPED.search(line):
            assert current in [int(c) for c in m.group(1).split(", ")], line
            fate[ran], ran = "dropped", None
    assert ran is None, f"cycle {ran} was neither committed nor merged nor dropped:\n{log}"
    return fate, commits, merges


def local_view(hub_dir: Path, tmp_path: Path) -> tuple[list[tuple[str, str]], list[dict], TrainingState]:
    """(commit id, title) oldest first, the head's metrics rows and state; every head file loads."""
    hub = LocalHub(hub_dir)
    hub.verify()
    load_network(hub.download(MODEL_FILE))
    state = TrainingState.load(hub.download(STATE_FILE))
    for name in state.replay_chunks:
        ReplayChunk.load(hub.download(replay_file(name)))
    titles = [(c.id, c.message.splitlines()[0]) for c in reversed(hub.history())]
    return titles, read_metrics(hub.download(METRICS_FILE)), state


def hf_view(fake, tmp_path: Path) -> tuple[list[tuple[str, str]], list[dict], TrainingState]:
    commits = fake.history(REPO)
    state = load_files(fake, commits[-1].id, tmp_path)
    rows = [json.loads(line) for line in commits[-1].files[METRICS_FILE].decode().splitlines() if line.strip()]
    return [(c.id, c.title) for c in commits if c.title != "initial commit"], rows, state


@pytest.mark.parametrize("kind", ["local", "hf"])
def test_two_trainers_at_once_lose_no_cycle(kind, tmp_path, request):
    if kind == "local":
        uri = str(tmp_path / "hub")
        envs = [{"XDG_CACHE_HOME": str(tmp_path / f"machine-{m}" / "cache")} for m in "ab"]
    else:
        fake = request.getfixturevalue("fake")
        uri = URI
        envs = [hf_env(fake, tmp_path, machine=m) for m in "ab"]
    args = ["train", "--hub", uri, "--cycles", "2", "--games", "2", "--steps", "2", *FAST]
    a, b = (start_cli(args, tmp_path, env=env) for env in envs)
    seen: list[str] = []
    try:
        wait_for_line(a, "cycle 1: self-play", seen)
        a.send_signal(signal.SIGSTOP)
        out_b, _ = b.communicate(timeout=240)
        a.send_signal(signal.SIGCONT)
        out_a = "".join(seen) + a.stdout.read()
        assert a.wait(timeout=240) == 0, out_a
        assert b.returncode == 0, out_b
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()

    fate_a, commits_a, merges_a = account(out_a)
    fate_b, commits_b, _ = account(out_b)
    assert len(fate_a) == 2 and len(fate_b) == 2
    assert merges_a >= 1, out_a  # A's first cycle met B's commits
    assert "[HF] hub unreachable" not in out_a + out_b

    titles, rows, state = local_view(Path(uri), tmp_path) if kind == "local" else hf_view(fake, tmp_path)
    assert [t for _, t in titles].count(INITIAL_MESSAGE) == 1  # one trainer initialised, the other took its commit
    assert "initialised" in out_a + out_b or "resuming from commit" in out_a + out_b
    numbers = [int(CYCLE_MESSAGE.match(t).group(1)) for _, t in titles if t != INITIAL_MESSAGE]
    assert numbers == list(range(1, len(numbers) + 1))  # no cycle number twice, none skipped
    ids = [i[:8] for i, _ in titles]
    assert set(commits_a + commits_b) <= set(ids)
    committed = sum(f == "committed" for f in [*fate_a.values(), *fate_b.values()])
    assert len(numbers) == committed == len(commits_a) + len(commits_b)
    assert [r["cycle"] for r in rows] == numbers and state.cycle == numbers[-1]
    assert any(r.get("merged_onto") for r in rows)
