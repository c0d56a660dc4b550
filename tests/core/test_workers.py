import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l4demons.network import NetConfig, build_network, weights_dict
from l4demons.selfplay import SelfPlayConfig
from l4demons.workers import SelfPlayPool

TINY = SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=20, concurrent_games=2)

POOL_CHILD = """
import sys, time
from l4demons.network import NetConfig
from l4demons.selfplay import SelfPlayConfig
from l4demons.workers import SelfPlayPool
pool = SelfPlayPool(2, NetConfig.from_name("tiny"), SelfPlayConfig(simulations=4, fast_simulations=2))
print(" ".join(str(p.pid) for p in pool._procs), flush=True)
sys.stdin.read()  # wait until killed
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purpose
        return f.read().split()[2] != "Z"


def test_two_workers_play_all_games_and_stream_them():
    cfg = NetConfig.from_name("tiny")
    state = weights_dict(build_network(cfg, 0), cfg)["state_dict"]
    seen = []
    with SelfPlayPool(2, cfg, TINY) as pool:
        games = pool.play(state, 5, seed=1, on_game=seen.append)
    assert len(games) == 5 and len(seen) == 5
    assert pool.evaluations > 0  # the workers report what they evaluated
    assert all(g.termination for g in games)


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc")
def test_workers_exit_when_the_trainer_is_killed(tmp_path):
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = dict(os.environ, PYTHONPATH=src)
    parent = subprocess.Popen([sys.executable, "-c", POOL_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling for the observed condition, bounded
    assert not any(alive(p) for p in pids), "self-play workers outlived their trainer"
