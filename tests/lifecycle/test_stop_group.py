"""A stop sent to the whole process group, in every phase of ``l4demons train``, commits the cycle in flight.

A terminal's Ctrl-C reaches every process of the group, and ``timeout``,
``docker stop`` and systemd send SIGTERM the same way. The trainer's
children (self-play workers, the Elo and gate pool, the engines it drives)
must not die of it before the trainer decides: each test starts the CLI in a
session of its own, waits for the line that says the phase began, signals
the group, and wants exit 0, no traceback, and a head that advanced and loads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from l4demons.checkpoint import METRICS_FILE, MODEL_FILE, STATE_FILE, TrainingState, read_metrics
from l4demons.elo import PlayerSpec
from l4demons.elo.game import GamesStopped, play_game
from l4demons.elo.match import schedule
from l4demons.elo.pool import GamePool
from l4demons.elo.openings import Opening
from l4demons.elo.players import RandomMover
from l4demons.hub.local import LocalHub
from l4demons.network import load_network
from l4demons.signals import StopFlag

from train_cli import CYCLE_MESSAGE, FAST, REPO, URI, cli_env, hf_env, load_files, wait_for_line

MEASURE = ["--elo-seconds", "60", "--elo-games", "2", "--gate-games", "2", "--elo-nodes", "1"]
"""After FAST: the per-cycle Elo and gate on, two one-node games each (the budget only has to fit them)."""


def start_group(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The CLI in a new session: its process group is its own, as a terminal's foreground job is."""
    return subprocess.Popen([sys.executable, "-m", "l4demons", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env(tmp_path, env), start_new_session=True)


def signal_group(proc: subprocess.Popen, sig: signal.Signals, when: str | None = None,
                 then: Callable[[], None] | None = None) -> str:
    """Signal ``proc``'s whole group after the line holding ``when`` (at once without), call ``then()``,
    and read the rest of its output; the process must exit 0 without a traceback.

    Whatever is left of the group is killed in the end.
    """
    seen: list[str] = []
    try:
        if when is not None:
            wait_for_line(proc, when, seen)
        os.killpg(proc.pid, sig)
        if then is not None:
            then()
        out = "".join(seen) + proc.stdout.read()
        code = proc.wait(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert code == 0, out
    assert "Traceback" not in out and f"{sig.name} received" in out, out
    return out


def head_loads(hub_dir: Path) -> str:
    """The head's title, once its weights, training state and metrics have loaded."""
    hub = LocalHub(hub_dir)
    load_network(hub.download(MODEL_FILE))
    state = TrainingState.load(hub.download(STATE_FILE))
    assert [r["cycle"] for r in read_metrics(hub.download(METRICS_FILE))] == list(range(1, state.cycle + 1))
    return hub.history()[0].message.splitlines()[0]


def interrupted_cycle(title: str) -> int:
    m = CYCLE_MESSAGE.match(title)
    assert m and title.endswith("(interrupted)"), title
    return int(m.group(1))


@pytest.mark.parametrize("phase,sig,args,ready", [
    pytest.param("self-play", signal.SIGTERM, ["--cycles", "1", "--games", "500", "--steps", "3", *FAST,
                                               "--workers", "2"], "cycle 1: self-play", id="self-play"),
    pytest.param("backprop", signal.SIGINT, ["--cycles", "1", "--games", "2", "--steps", "1000000", *FAST],
                 "cycle 1: 2 games", id="backprop"),
    # Measurement runs beside training: a stop while its processes play (an Elo game, a gate game) commits
    # the training cycle in flight, whichever it is by then.
    pytest.param("measurement", signal.SIGINT, ["--cycles", "50", "--games", "2", "--steps", "1", *FAST, *MEASURE],
                 "[ELO] cycle 1:", id="measurement"),
    pytest.param("gate", signal.SIGTERM, ["--cycles", "50", "--games", "2", "--steps", "1", *FAST, *MEASURE],
                 "[ELO] gate:", id="gate"),
])
def test_a_stop_to_the_group_commits_the_cycle_in_flight(tmp_path, hub_dir, phase, sig, args, ready):
    proc = start_group(["train", "--hub", str(hub_dir), *args], tmp_path)
    signal_group(proc, sig, when=ready)
    title = head_loads(hub_dir)
    if phase in ("measurement", "gate"):  # beside training, the stop may also fall between two cycles
        m = CYCLE_MESSAGE.match(title)
        assert m and int(m.group(1)) >= 1, title
    else:
        assert interrupted_cycle(title) == 1


def test_a_stop_to_the_group_during_the_commit_lets_it_land(fake, tmp_path):
    """Held mid-commit on the fake Hub, the group's SIGTERM lets cycle 1 go up whole, and no cycle 2 starts."""
    arrived, go, commits = threading.Event(), threading.Event(), []
    handle = fake.handle

    def held(method, path, *args, **kwargs):
        if method == "POST" and f"/api/models/{REPO}/commit/" in path:
            commits.append(path)
            if len(commits) == 2:  # the first is the initial weights', the second cycle 1's
                arrived.set()
                go.wait(120)
        return handle(method, path, *args, **kwargs)

    fake.handle = held
    proc = start_group(["train", "--hub", URI, "--cycles", "2", "--games", "2", "--steps", "1", *FAST], tmp_path,
                       env=hf_env(fake, tmp_path))
    try:
        assert arrived.wait(120), "cycle 1's commit never reached the hub"
        out = signal_group(proc, signal.SIGTERM, then=go.set)
    finally:
        go.set()
    head = fake.repos[REPO].commits[fake.repos[REPO].main]
    assert head.title.startswith("Training cycle 1,") and "(interrupted)" not in head.title, out
    assert f"-> commit {head.id[:8]}" in out and "cycle 2" not in out, out
    assert load_files(fake, head.id, tmp_path).cycle == 1


def test_the_run_s_stop_cuts_the_game_in_flight_and_refuses_the_next():
    stop = StopFlag()
    moves = iter(range(10**6))
    with pytest.raises(GamesStopped):  # the stop comes at ply 5 of a game
        play_game(RandomMover(1), RandomMover(2), Opening("start", ()), 200, should_stop=lambda: next(moves) >= 5)
    jobs = schedule(PlayerSpec.random(), PlayerSpec.random(), [Opening("start", ())], 2, max_plies=20)
    with GamePool(0, stop=stop) as pool:
        assert pool.submit(jobs[0]).result().plies > 0
        stop.request("test")
        with pytest.raises(GamesStopped):
            pool.submit(jobs[1]).result()
