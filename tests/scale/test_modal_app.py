"""``train_modal.py``: imports with no credentials and no network, and its
function body trains through ``.local()``: a tiny run against a local hub, a
preemption and a cancel (neither spends a retry), an outbox that outlives its
container on the volume (a stand-in folder here), resources and pruning."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE

pytest.importorskip("modal", reason="modal is not installed (pip install -e '.[modal]')")

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--net", "tiny", "--games", "2", "--cycle-seconds", "0", "--steps", "2", "--elo-seconds", "0", "--simulations", "4",
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
    assert train_modal._cycles_left(str(hub_dir), 3, marker) == (3, False)  # first attempt: the hub is at cycle 1
    marker.write_text(json.dumps({"start_cycle": 0, "cycles": 3}))  # as if it began at cycle 0
    assert train_modal._cycles_left(str(hub_dir), 3, marker) == (2, False)
    assert train_modal._cycles_left(str(hub_dir), 1, marker) == (0, False)


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


# -- preemption, cancellation, the volume, resources ---------------------------------------------------------

sys.path.insert(0, str(ROOT / "tests" / "hub"))  # the fake Hub
sys.path.insert(0, str(ROOT / "tests" / "lifecycle"))  # its client settings and checks
from fake_hf import CLIENT_ENV, FakeHub  # noqa: E402
from train_cli import load_files  # noqa: E402

# train.local() in a fresh interpreter; prints how the attempt ended, as Modal would see it.
ATTEMPT = r"""
import json, sys, warnings
sys.path.insert(0, sys.argv[1])
import modal, train_modal
warnings.filterwarnings("ignore", message=".*executing locally.*")
args = json.loads(sys.argv[2])
try:
    rc = train_modal.train.local(**args)
    outcome = f"returned {rc}"
except KeyboardInterrupt:
    outcome = "preempted"
except modal.exception.InputCancellation:
    outcome = "cancelled"
except RuntimeError as e:
    outcome = f"failed: {e}"
print("OUTCOME " + outcome, flush=True)
"""


def _import_train_modal():
    sys.path.insert(0, str(ROOT))
    try:
        import train_modal
    finally:
        sys.path.remove(str(ROOT))
    return train_modal


def attempt_env(tmp_path: Path, volume: Path, fake=None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_") and k not in ("L4D_HUB", "HF_TOKEN")}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "xc"),
               L4D_MODAL_CACHE=str(volume), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **CLIENT_ENV)
    if fake is not None:
        env.update(HF_ENDPOINT=fake.endpoint, HF_TOKEN="hf_write")
    return env


def start_attempt(tmp_path: Path, volume: Path, args: dict, fake=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ATTEMPT, str(ROOT), json.dumps(args)], cwd=tmp_path,
                            env=attempt_env(tmp_path, volume, fake), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen, seen: list[str] | None = None) -> tuple[str, str]:
    out = "".join(seen or []) + proc.communicate(timeout=300)[0]
    m = re.search(r"^OUTCOME (.*)$", out, re.M)
    assert m, out
    return m.group(1), out


@pytest.mark.parametrize("signum,outcome", [(signal.SIGINT, "preempted"), (signal.SIGUSR1, "cancelled")])
def test_a_preemption_or_a_cancel_commits_and_spends_no_retry(tmp_path, signum, outcome):
    hub_dir = tmp_path / "hub"
    proc = start_attempt(tmp_path, tmp_path / "volume", {"hub": str(hub_dir), "cycles": 1, "run_id": "p",
                                                          "extra": [*TINY, "--games", "500"]})
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if "cycle 1: self-play" in line:
            break
    proc.send_signal(signum)  # Modal's notice reaches the function's process
    got, out = finish(proc, seen)
    # Not a RuntimeError: Modal restarts a preempted input itself, and a cancelled one is done.
    assert got == outcome, out
    last = LocalHub(hub_dir).history()[0].message
    assert last.startswith("Training cycle 1, ") and "(interrupted)" in last, out
    assert out.count("received: finishing this step") == 1, out  # one stop


def test_the_outbox_and_the_run_record_live_on_the_volume(tmp_path):
    volume = tmp_path / "volume"
    with FakeHub(lfs=True) as fake:
        args = {"hub": "hf://test/modal", "cycles": 1, "run_id": "r1", "extra": TINY}
        got, out = finish(start_attempt(tmp_path, volume, args, fake))
        assert got == "returned 0", out
        fake.stop()  # the Hub goes away: the next attempt's cycles wait in the outbox, on the volume
        got, out = finish(start_attempt(tmp_path, volume, {**args, "cycles": 3}, fake))
        assert got == "returned 0" and "stays on disk" in out, out
        assert len(list((volume / "outbox" / "r1").rglob("pending.json"))) == 2
        fake.start()  # a later attempt (another container, same volume) owes no cycle but uploads the waiting ones
        got, out = finish(start_attempt(tmp_path, volume, {**args, "cycles": 3}, fake))
        assert got == "returned 0" and "--cycles 0" in out and "folded in" in out, out
        assert not list((volume / "outbox" / "r1").rglob("pending.json"))
        assert load_files(fake, fake.repos["test/modal"].main, tmp_path, repo="test/modal").cycle == 3


def test_workers_get_cpus_and_memory_and_torchrun_fits_the_grace_period():
    train_modal = _import_train_modal()
    assert train_modal.resources("B200:4") == {"cpu": 32.0, "memory": 4 * 32 * 1024}
    assert train_modal.resources("H100") == {"cpu": 8.0, "memory": 32 * 1024}
    spec = train_modal.train._spec_  # what Modal will request for the function
    assert (spec.cpu, spec.memory) == (32.0, 4 * 32 * 1024)
    cmd = train_modal.command(4, ["--hub", "hf://a/b", "--stop-seconds", str(train_modal.STOP_S)])
    assert f"--shutdown-timeout={train_modal.SHUTDOWN_S}" in cmd and "SIGUSR1" in " ".join(cmd)
    assert train_modal.STOP_S < train_modal.SHUTDOWN_S < train_modal.GRACE_S
    assert train_modal.command(1, ["--hub", "x"])[1:4] == ["-m", "l4demons", "train"]
    env = train_modal.child_env(Path("/cache"), "r9")
    assert env["L4D_OUTBOX"] == "/cache/outbox/r9" and env["HF_HOME"] == "/cache/huggingface"
    assert not env["HF_XET_CACHE"].startswith("/cache")


def test_old_downloads_and_caches_are_pruned_from_the_volume(tmp_path):
    train_modal = _import_train_modal()
    from l4demons.hub.hf_cache import RepoCache

    storage = tmp_path / "huggingface" / "hub" / "models--me--bot"
    repo = RepoCache(storage, keep_own=10)
    for i in range(6):
        src = tmp_path / f"w{i}"
        src.write_bytes(os.urandom(10_000))
        repo.add_commit(f"{i:040x}", None, {"model.pt": src})
    (tmp_path / "huggingface" / "xet" / "chunk-cache").mkdir(parents=True)
    (tmp_path / "huggingface" / "xet" / "chunk-cache" / "c").write_bytes(os.urandom(5000))
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text("{}")
    os.utime(tmp_path / "runs" / "old.json", (0, 0))
    (tmp_path / "runs" / "new.json").write_text("{}")
    freed = train_modal.prune_volume(tmp_path)
    assert freed >= 4 * 10_000 + 5000
    assert len(list((storage / "snapshots").iterdir())) == train_modal.KEEP_SNAPSHOTS
    assert not (tmp_path / "huggingface" / "xet").exists()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["new.json"]
