"""Training on Modal: the lifecycle of ``l4demons train``, on cloud GPUs.

Once, a token that may write the hub (the function reads ``HF_TOKEN``)::

    modal secret create huggingface-secret HF_TOKEN=hf_...

Then::

    modal run train_modal.py --hub hf://you/l4demons                  # B200:4, 1 hour
    modal run train_modal.py --hub hf://you/l4demons --gpu H100:8 --hours 2
    modal run train_modal.py --hub hf://you/l4demons --cycles 10 --extra "--net medium --games 400"
    L4D_HUB=hf://you/l4demons modal run --detach train_modal.py --hours 12

One container per run, with ``CPU_PER_GPU`` cores and ``MEMORY_PER_GPU_MB``
of memory per GPU (self-play is CPU work; Modal would otherwise reserve a
fraction of a core and size thread pools from it). With several GPUs it
starts ``torchrun --standalone --nproc-per-node N -m l4demons train ...``
(one rank per GPU: DDP learner, self-play on every GPU, only rank 0 talks
to the hub); with one GPU or none, ``python -m l4demons train ...``.

The Modal Volume ``l4demons-cache`` holds what must outlive a container: the
Hugging Face download cache (trimmed at each start to the newest snapshots;
Xet's chunk cache stays on the container's disk), the run's outbox (cycles
waiting to go up, so a retried container uploads them) and the run's
record of its start cycle. The volume is committed every minute and at the end.

Preemption is left to Modal, which restarts a preempted input on its own,
outside the retry budget: the notice (SIGINT, or SIGTERM) goes on to the
trainer, which cuts its step and commits within ``STOP_S`` seconds (torchrun
waits ``SHUTDOWN_S`` for its ranks, both inside Modal's ``GRACE_S``), and
the function then re-raises the interrupt, so the attempt ends as a
preemption and not as a failure. ``retries`` is for crashes. A cancel
(SIGUSR1) reaches the trainer the same way and ends the input as cancelled.
The child runs in its own session and gets each signal once from here,
however many processes of the container the platform signals. ``l4demons
train`` always resumes from the hub's head (or the outbox), so an attempt
loses at most the cycle in flight. The budget belongs to the run:
``--hours`` becomes a deadline, and ``--cycles`` a target cycle number
recorded on the volume by the first attempt.

Locally, ``train.local(hub=DIR, cycles=1, extra=[...])`` runs the function body
in this process against any hub (the tests do); ``L4D_MODAL_CACHE`` names a
folder that plays the volume (else a temporary one is used and removed). Importing this file needs
neither Modal credentials nor network: Modal resolves the image, secret and
volume only when an app runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import modal

GPU = "B200:4"
"""GPU type and count (Modal's syntax); ``--gpu`` overrides it per run."""
CPU_PER_GPU = 8.0
"""Cores requested per GPU: self-play workers, data loading, the hub upload."""
MEMORY_PER_GPU_MB = 32 * 1024
"""Memory requested per GPU (MiB): replay window, self-play trees, checkpoints."""
TIMEOUT_S = 24 * 3600
"""Per attempt; Modal's maximum. A retried attempt gets a fresh one."""
MARGIN_S = 30 * 60
"""Time left at the end of an attempt for the cycle in flight and its upload."""
DEFAULT_HOURS = 1.0
"""Budget when neither --hours nor --cycles is given."""
CACHE_DIR = "/cache"
"""Where the volume is mounted in the container."""
GRACE_S = 30
"""Seconds Modal leaves between its preemption notice and SIGKILL."""
STOP_S = 20
"""Of those, what the trainer's final commit may take (``--stop-seconds``)."""
SHUTDOWN_S = 27
"""torchrun's shutdown timeout: after the trainer's stop budget, before Modal's SIGKILL."""
KEEP_SNAPSHOTS = 2
"""Commits whose downloads the volume's HF cache keeps per repository."""
VOLUME_COMMIT_S = 60
"""How often the volume is committed while the trainer runs."""

ROOT = Path(__file__).resolve().parent
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def resources(gpu: str) -> dict[str, float | int]:
    """``cpu=`` and ``memory=`` for a GPU spec such as ``"B200:4"``."""
    m = re.search(r":(\d+)$", gpu)
    n = int(m.group(1)) if m else 1
    return {"cpu": CPU_PER_GPU * n, "memory": MEMORY_PER_GPU_MB * n}


app = modal.App("l4demons-train")
cache = modal.Volume.from_name("l4demons-cache", create_if_missing=True)
# What the image's build of the package leaves out: this machine's builds, runs and caches.
IMAGE_IGNORE = [".git", ".venv", "runs", "build", "**/__pycache__", "**/*.so", "**/*.egg-info", ".pytest_cache"]
image = (
    modal.Image.debian_slim()
    # stockfish: an opponent of the per-cycle Elo estimate; g++: builds the compiled search core
    .apt_install("stockfish", "g++")
    .pip_install_from_pyproject(str(ROOT / "pyproject.toml"))
    .env({"PYTHONUNBUFFERED": "1"})
    # the package installed as pip installs it here: data files (Elo anchors) and the C++ core built in the image
    .add_local_dir(str(ROOT), "/opt/l4demons", copy=True, ignore=IMAGE_IGNORE)
    .run_commands("pip install --no-deps /opt/l4demons")
)


@app.function(
    image=image,
    gpu=GPU,
    **resources(GPU),
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
    :raises KeyboardInterrupt: preempted; the trainer committed, and Modal restarts the input.
    :raises modal.exception.InputCancellation: cancelled; the trainer committed.
    :raises RuntimeError: the trainer crashed or was killed (Modal then retries).
    """
    in_cloud = not modal.is_local() and os.path.isdir(CACHE_DIR)
    stand_in = os.environ.get("L4D_MODAL_CACHE")  # locally, a folder that plays the volume (kept)
    if in_cloud or stand_in:
        cache_dir = Path(CACHE_DIR if in_cloud else stand_in)
    else:
        cache_dir = Path(tempfile.mkdtemp(prefix="l4demons-modal-"))
    run_id = run_id or "local"
    env = child_env(cache_dir, run_id)
    if in_cloud or stand_in:  # this process reads the hub and the outbox as the trainer will (set before
        for name in ("HF_HOME", "L4D_OUTBOX"):  # anything imports huggingface_hub, which reads HF_HOME once)
            os.environ[name] = env[name]
    if "HF_TOKEN" not in os.environ and "HUGGING_FACE_HUB_TOKEN" in os.environ:
        os.environ["HF_TOKEN"] = env["HF_TOKEN"] = os.environ["HUGGING_FACE_HUB_TOKEN"]
    freed = prune_volume(cache_dir)
    if freed:
        print(f"[TRAIN] volume: {freed / 1e9:.2f} GB of old downloads and caches removed", flush=True)

    budget = ["--hub", hub, "--stop-seconds", str(STOP_S)]
    if cycles is not None:
        left, waiting = _cycles_left(hub, cycles, cache_dir / "runs" / f"{run_id}.json")
        if in_cloud:
            cache.commit()  # the next attempt must see the run's start cycle
        if left == 0 and not waiting:
            print(f"[TRAIN] run {run_id}: its {cycles} cycles are done", flush=True)
            return 0
        budget += ["--cycles", str(left)]  # 0 with cycles waiting in the outbox: a run that uploads them
    else:
        left_s = min((deadline or time.time() + DEFAULT_HOURS * 3600) - time.time(), TIMEOUT_S - MARGIN_S)
        if left_s < 60:
            print(f"[TRAIN] run {run_id}: its time budget is spent", flush=True)
            return 0
        budget += ["--hours", f"{left_s / 3600:.4f}"]

    cmd = command(_gpu_count(), [*budget, *(extra or [])])
    print("[TRAIN] " + shlex.join(cmd[1:]), flush=True)
    try:
        rc, signals = _run_forwarding_signals(cmd, env, every=(VOLUME_COMMIT_S, cache.commit) if in_cloud else None)
    finally:
        if in_cloud:
            cache.commit()
        elif not stand_in:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if "SIGUSR1" in signals:
        raise modal.exception.InputCancellation(f"cancelled; the trainer committed (exit status {rc})")
    if signals:  # preemption: left to Modal, which restarts the input outside the retry budget
        raise KeyboardInterrupt(f"preempted ({', '.join(signals)}); the trainer committed, the next attempt resumes")
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
    fn = train if gpu == GPU else train.with_options(gpu=gpu, **resources(gpu))
    rc = fn.remote(hub, cycles=cycles, deadline=deadline, extra=shlex.split(extra), run_id=uuid.uuid4().hex[:12])
    if rc:
        sys.exit(rc)


def command(gpus: int, args: list[str]) -> list[str]:
    """The trainer's command line: torchrun with a rank per GPU when there are several."""
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                f"--shutdown-timeout={SHUTDOWN_S}", "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "-m", "l4demons", "train", *args]
    return [sys.executable, "-m", "l4demons", "train", *args]


def child_env(cache_dir: Path, run_id: str) -> dict[str, str]:
    """The trainer's environment: HF cache and outbox on the volume, Xet's chunk cache off it."""
    return dict(
        os.environ,
        HF_HOME=str(cache_dir / "huggingface"),
        HF_XET_CACHE=os.path.join(tempfile.gettempdir(), "l4demons-xet"),
        L4D_OUTBOX=str(cache_dir / "outbox" / run_id),
        TORCH_ELASTIC_SHUTDOWN_TIMEOUT=str(SHUTDOWN_S),
        PYTHONPATH=os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")])),
    )


def prune_volume(cache_dir: Path, max_age_days: float = 14.0) -> int:
    """Trim what piles up on the volume: old HF snapshots, Xet caches, old run records, empty outboxes.

    Returns the bytes freed.
    """
    from l4demons.hub.hf_cache import trim_cache

    freed = trim_cache(cache_dir / "huggingface" / "hub", keep=KEEP_SNAPSHOTS)
    xet = cache_dir / "huggingface" / "xet"  # left by runs before the Xet cache moved off the volume
    if xet.is_dir():
        freed += sum(p.stat().st_size for p in xet.rglob("*") if p.is_file())
        shutil.rmtree(xet, ignore_errors=True)
    old = time.time() - max_age_days * 86400
    for marker in (cache_dir / "runs").glob("*.json"):
        if marker.stat().st_mtime < old:
            freed += marker.stat().st_size
            marker.unlink(missing_ok=True)
    for outbox in (cache_dir / "outbox").glob("*"):  # a run's outbox, once nothing waits in it
        if outbox.is_dir() and not any(outbox.rglob("pending.json")) and outbox.stat().st_mtime < old:
            shutil.rmtree(outbox, ignore_errors=True)
    return freed


def _package_root() -> str:
    """The folder holding the ``l4demons`` package, for the child's PYTHONPATH."""
    import l4demons

    return str(Path(l4demons.__file__).resolve().parent.parent)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cycles_left(hub: str, cycles: int, marker: Path) -> tuple[int, bool]:
    """Cycles still owed to this run (the first attempt records where it began), and whether some wait to go up.

    The run has reached the newest of the hub's cycle and the cycles waiting in its outbox.
    """
    from l4demons.checkpoint import STATE_FILE, TrainingState
    from l4demons.hub import open_hub
    from l4demons.outbox import Outbox

    opened = open_hub(hub)
    waiting = Outbox(opened.uri).entries()
    state_path = opened.download(STATE_FILE)
    current = TrainingState.load(state_path).cycle if state_path is not None else 0
    current = max([current, *(p.cycle for p in waiting)])
    if marker.exists():
        start = json.loads(marker.read_text())["start_cycle"]
    else:
        start = current
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"start_cycle": start, "cycles": cycles}))
        os.replace(tmp, marker)
    return max(0, start + cycles - current), bool(waiting)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str],
                            every: tuple[float, Callable[[], object]] | None = None) -> tuple[int, list[str]]:
    """Run the trainer in its own session; SIGINT/SIGTERM/SIGUSR1 go on to it, once each, so it saves and commits.

    ``every=(seconds, fn)`` calls ``fn`` that often while the trainer runs (a volume commit).
    Returns its exit status and the names of the signals forwarded.
    """
    child = subprocess.Popen(cmd, env=env, start_new_session=True)
    received: list[str] = []
    done = threading.Event()
    if every is not None:
        threading.Thread(target=_periodically, args=(done, *every), daemon=True).start()
    try:
        if threading.current_thread() is not threading.main_thread():
            return child.wait(), received

        def forward(signum: int, _frame: object) -> None:
            received.append(signal.Signals(signum).name)
            if child.poll() is None:
                child.send_signal(signum)

        old = {s: signal.signal(s, forward) for s in FORWARDED}
        try:
            return child.wait(), received
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    finally:
        done.set()


def _periodically(done: threading.Event, seconds: float, fn) -> None:
    while not done.wait(seconds):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a failed volume commit is retried at the next tick
            print(f"[TRAIN] volume commit failed ({e}); retrying in {seconds:.0f}s", flush=True)
