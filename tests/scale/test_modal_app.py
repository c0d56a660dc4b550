"""``train_modal.py``: imports with no credentials and no network, and its
function body trains a tiny run against a local hub through ``.local()``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE

pytest.importorskip("modal", reason="modal is not installed (pip install -e '.[modal]')")

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--net", "tiny", "--games", "2", "--steps", "2", "--elo-seconds", "0", "--simulations", "4",
        "--fast-simulations", "2", "--max-plies", "30", "--workers", "1", "--device", "cpu"]

# Runs in a fresh interpreter: every IP connection and DNS lookup fails and is
# recorded, so "imports offline" means no attempt at all, not a swallowed one.
DRIVER = r"""
import json, socket, sys, warnings
attempts = []
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        attempts.append(repr(address))
        raise OSError("network is off in this test")
    return _connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    attempts.append(f"dns {host}")
    raise socket.gaierror("network is off in this test")
socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo

sys.path.insert(0, sys.argv[1])
import train_modal
import_attempts = list(attempts)
warnings.filterwarnings("ignore", message=".*executing locally.*")
rc = train_modal.train.local(hub=sys.argv[2], cycles=1, extra=json.loads(sys.argv[3]))
print("RESULT " + json.dumps({"rc": rc, "import_attempts": import_attempts, "gpu": train_modal.GPU}))
"""


def test_train_modal_imports_offline_and_runs_locally(tmp_path):
    hub_dir = tmp_path / "hub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path / "home"), HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               HF_HUB_OFFLINE="1", XDG_DATA_HOME=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), str(hub_dir), json.dumps(TINY)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(re.search(r"^RESULT (.*)$", proc.stdout, re.M).group(1))
    assert result["import_attempts"] == []
    assert result["rc"] == 0 and result["gpu"] == "B200:4"

    titles = [c.message.splitlines()[0] for c in reversed(LocalHub(hub_dir).history())]
    assert titles[0] == INITIAL_MESSAGE
    assert len(titles) == 2 and titles[1].startswith("Training cycle 1, ")

    # A retried attempt owes only the rest of the run's cycles: the first
    # attempt recorded the hub's cycle when the run began.
    sys.path.insert(0, str(ROOT))
    try:
        import train_modal
    finally:
        sys.path.remove(str(ROOT))
    marker = tmp_path / "runs" / "r1.json"
    assert train_modal._cycles_left(str(hub_dir), 3, marker) == 3  # first attempt: the hub is at cycle 1
    marker.write_text(json.dumps({"start_cycle": 0, "cycles": 3}))  # as if it began at cycle 0
    assert train_modal._cycles_left(str(hub_dir), 3, marker) == 2
    assert train_modal._cycles_left(str(hub_dir), 1, marker) == 0


def test_a_preemption_signal_reaches_the_trainer(tmp_path):
    """Modal's SIGINT goes on to the child, which can then save; the parent hears which signal it was."""
    import signal
    import threading

    sys.path.insert(0, str(ROOT))
    try:
        import train_modal
    finally:
        sys.path.remove(str(ROOT))
    ready = tmp_path / "ready"
    child = ("import pathlib, signal, sys, time\n"
             "signal.signal(signal.SIGINT, lambda *_: sys.exit(7))\n"
             f"pathlib.Path({str(ready)!r}).touch()\n"
             "time.sleep(30)\n")

    def preempt():
        for _ in range(200):
            if ready.exists():
                break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=preempt, daemon=True).start()
    rc, signals = train_modal._run_forwarding_signals([sys.executable, "-c", child], dict(os.environ))
    assert (rc, signals) == (7, ["SIGINT"])
