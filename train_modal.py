"""Training on Modal: the lifecycle of ``l4demons train``, on cloud GPUs.

Once, a token that may write the hub (the function reads ``HF_TOKEN``)::

    modal secret create huggingface-secret HF_TOKEN=hf_...

Then::

    modal run train_modal.py --hub hf://you/l4demons                  # B200:4, 1 hour
    modal run train_modal.py --hub hf://you/l4demons --gpu H100:8 --hours 2
    modal run train_modal.py --hub hf://you/l4demons --cycles 10 --extra "--net medium --games 400"
    L4D_HUB=hf://you/l4demons modal run --detach train_modal.py --hours 12

One container per run. With several GPUs it starts ``torchrun --standalone
--nproc-per-node N -m l4demons train ...`` (one rank per GPU: DDP learner,
self-play on every GPU, only rank 0 talks to the hub); with one GPU or none,
``python -m l4demons train ...``. The Hugging Face download cache lives on the
Modal Volume ``l4demons-cache``, so a restarted container finds the replay
window already downloaded.

Preemption and crashes: Modal restarts a preempted function on the same input,
and ``retries`` re-runs one that crashed or ran past its per-attempt timeout.
The preemption notice (SIGINT/SIGTERM) is passed on to the trainer, which
finishes its step, commits and exits; the attempt then fails on purpose, so
that the run goes on. ``l4demons train`` always resumes from the hub's head,
so an attempt loses at most the cycle in flight. The budget belongs to the run:
``--hours`` becomes a deadline, and ``--cycles`` a target cycle number recorded
on the volume by the first attempt.

Locally, ``train.local(hub=DIR, cycles=1, extra=[...])`` runs the function body
in this process against any hub (the tests do). Importing this file needs
neither Modal credentials nor network: Modal resolves the image, secret and
volume only when an app runs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import modal

GPU = "B200:4"
"""GPU type and count (Modal's syntax); ``--gpu`` overrides it per run."""
TIMEOUT_S = 24 * 3600
"""Per attempt; Modal's maximum. A retried attempt gets a fresh one."""
MARGIN_S = 30 * 60
"""Time left at the end of an attempt for the cycle in flight and its upload."""
DEFAULT_HOURS = 1.0
"""Budget when neither --hours nor --cycles is given."""
CACHE_DIR = "/cache"
"""Where the volume is mounted in the container."""

ROOT = Path(__file__).resolve().parent

app = modal.App("l4demons-train")
cache = modal.Volume.from_name("l4demons-cache", create_if_missing=True)
image = (
    modal.Image.debian_slim()
    .apt_install("stockfish")  # an opponent of the per-cycle Elo estimate
    .pip_install_from_pyproject(str(ROOT / "pyproject.toml"))
    .env({"PYTHONUNBUFFERED": "1"})
    # the package with its data files (Elo anchors), mounted at start-up
    .add_local_python_source("l4demons", ignore=lambda p: "__pycache__" in p.parts)
)


@app.function(
    image=image,
    gpu=GPU,
    timeout=TIMEOUT_S,
    retries=modal.Retries(max_retries=3, backoff_coefficient=1.0, initial_delay=30.0),
    volumes={CACHE_DIR: cache},
    secrets=[modal.Secret.from_name("huggingface-secret")],
)
def train(hub: str, cycles: int | None = None, deadline: float | None = None,
          extra: list[str] | None = None, run_id: str | None = None) -> int:
    """One attempt of a run; returns ``l4demons train``'s exit status (0, or 2 for a user error).

    :param hub: a directory or hf://owner/repo.
    :param cycles: cycles for the whole run (across retries); None: until ``deadline``.
    :param deadline: Unix time after which no cycle starts; None: ``cycles`` decides.
    :param extra: more ``l4demons train`` flags (``--net``, ``--games``, ...).
    :param run_id: names the run across retries (the entrypoint makes one).
    :raises RuntimeError: the trainer crashed or was killed (Modal then retries).
    """
    in_cloud = not modal.is_local() and os.path.isdir(CACHE_DIR)
    cache_dir = Path(CACHE_DIR) if in_cloud else Path(tempfile.mkdtemp(prefix="l4demons-modal-"))
    if in_cloud:  # before anything imports huggingface_hub, which reads them once
        os.environ["HF_HOME"] = str(cache_dir / "huggingface")
        if "HF_TOKEN" not in os.environ and "HUGGING_FACE_HUB_TOKEN" in os.environ:
            os.environ["HF_TOKEN"] = os.environ["HUGGING_FACE_HUB_TOKEN"]
    env = dict(os.environ, HF_HOME=str(cache_dir / "huggingface"),
               PYTHONPATH=os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")])))

    budget = ["--hub", hub]
    if cycles is not None:
        left = _cycles_left(hub, cycles, cache_dir / "runs" / f"{run_id or 'local'}.json")
        if in_cloud:
            cache.commit()  # the next attempt must see the run's start cycle
        if left == 0:
            print(f"[TRAIN] run {run_id}: its {cycles} cycles are done", flush=True)
            return 0
        budget += ["--cycles", str(left)]
    else:
        left_s = min((deadline or time.time() + DEFAULT_HOURS * 3600) - time.time(), TIMEOUT_S - MARGIN_S)
        if left_s < 60:
            print(f"[TRAIN] run {run_id}: its time budget is spent", flush=True)
            return 0
        budget += ["--hours", f"{left_s / 3600:.4f}"]

    gpus = _gpu_count()
    if gpus > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
               "-m", "l4demons", "train", *budget, *(extra or [])]
    else:
        cmd = [sys.executable, "-m", "l4demons", "train", *budget, *(extra or [])]
    print("[TRAIN] " + shlex.join(cmd[1:]), flush=True)
    try:
        rc, signals = _run_forwarding_signals(cmd, env)
    finally:
        if in_cloud:
            cache.commit()
        else:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if signals:  # preemption: the trainer has committed; fail this attempt so that the run goes on
        raise RuntimeError(f"interrupted by {', '.join(signals)} after the trainer saved; the next attempt resumes from the hub")
    if rc not in (0, 2):  # 2: a user error, which a retry would only repeat
        raise RuntimeError(f"l4demons train exited with status {rc}; Modal retries, resuming from the hub")
    return rc


@app.local_entrypoint()
def main(hub: str = "", gpu: str = GPU, hours: float | None = None, cycles: int | None = None, extra: str = "") -> None:
    """``modal run train_modal.py [--hub hf://owner/repo] [--gpu B200:4] [--hours H | --cycles N] [--extra "..."]``."""
    hub = hub or os.environ.get("L4D_HUB", "")
    if not hub.startswith("hf://"):
        sys.exit("train_modal.py: a cloud run needs a Hugging Face hub: --hub hf://owner/repo (or set L4D_HUB)")
    if hours is not None and cycles is not None:
        sys.exit("train_modal.py: give --hours or --cycles, not both")
    if hours is not None and not 0 < hours <= (TIMEOUT_S - MARGIN_S) / 3600:
        sys.exit(f"train_modal.py: --hours must be in (0, {(TIMEOUT_S - MARGIN_S) / 3600:g}] (one Modal attempt)")
    deadline = None if cycles is not None else time.time() + (hours or DEFAULT_HOURS) * 3600
    fn = train if gpu == GPU else train.with_options(gpu=gpu)
    rc = fn.remote(hub, cycles=cycles, deadline=deadline, extra=shlex.split(extra), run_id=uuid.uuid4().hex[:12])
    if rc:
        sys.exit(rc)


def _package_root() -> str:
    """The folder holding the ``l4demons`` package, for the child's PYTHONPATH."""
    import l4demons

    return str(Path(l4demons.__file__).resolve().parent.parent)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cycles_left(hub: str, cycles: int, marker: Path) -> int:
    """Cycles still owed to this run: the first attempt records the hub's cycle."""
    from l4demons.checkpoint import STATE_FILE, TrainingState
    from l4demons.hub import open_hub

    state_path = open_hub(hub).download(STATE_FILE)
    current = TrainingState.load(state_path).cycle if state_path is not None else 0
    if marker.exists():
        start = json.loads(marker.read_text())["start_cycle"]
    else:
        start = current
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"start_cycle": start, "cycles": cycles}))
        os.replace(tmp, marker)
    return max(0, start + cycles - current)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the trainer; SIGINT/SIGTERM (Modal's preemption notice) go on to it, so it saves and commits.

    Returns its exit status and the names of the signals forwarded.
    """
    child = subprocess.Popen(cmd, env=env)
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        return child.wait(), received

    def forward(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        child.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait(), received
    finally:
        for s, h in old.items():
            signal.signal(s, h)
