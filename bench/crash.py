"""kill -9 at random moments: the hub keeps its last good commit and the next run resumes from it.

Each trial starts ``l4demons train`` (tiny network, a few cycles) on the hub
and kills it with SIGKILL at a random, seeded moment: anywhere in the run
(start-up, resume, self-play, backprop, saving) or inside the commit window
(after a cycle's ``[LOSS]`` line, while its files are saved and uploaded).
Then the hub is checked: every file of the head loads (``model.pt`` and
``model_best.pt`` with ``load_network``, ``training_state.pt`` with
``TrainingState.load``, each replay chunk it names with ``ReplayChunk.load``,
the metrics rows one per cycle), and on the local hub every object matches
its hash. The next trial's run is the check that a restart resumes from the
last good commit: it must say ``resuming from commit <head>: cycle C`` and
train cycle C + 1. After the last trial one more run must do the same and
commit cycle C + 1.

The Hugging Face variant runs against the fake Hub of ``tests/hub/fake_hf.py``
on loopback, with binary files through LFS to its second host as the real
Hub does (``--hub hf-inline``: every file inline instead). That host reads
uploads at ``UPLOAD_RATE`` bytes/s, a slow link, so that kills in the
commit window land in the middle of LFS uploads; the fake records when it
was receiving each upload, and the table counts the kills that came then. Each check downloads the head afresh, through the
verified download path (the redirect to the storage host included).
``tests/lifecycle/test_crash.py`` runs a few trials of each.

    python bench/crash.py                          # 20 trials on each hub (about 5 minutes)
    python bench/crash.py --trials 50 --hub hf --seed 7
    python bench/crash.py --hub hf --window-share 1     # every kill aimed at a commit, most during LFS uploads
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hub"))  # the fake Hub

FAST = ["--net", "tiny", "--elo-seconds", "0", "--simulations", "4", "--fast-simulations", "2", "--max-plies", "30",
        "--workers", "1", "--concurrent-games", "8", "--batch-size", "32", "--games", "2", "--steps", "2",
        "--commit-interval", "0"]
HF_CLIENT_ENV = {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0",
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "L4D_HF_RETRIES": "3", "L4D_HF_RETRY_DELAY": "0.05"}
REPO = "crash/bot"
UPLOAD_RATE = 2_000_000
"""Bytes/s the fake's storage host reads LFS uploads at: a commit of the tiny net's files takes a few tenths of a second."""
KINDS = ("local", "hf", "hf-inline")
RESUMING = re.compile(r"resuming from commit ([0-9a-f]{8}): cycle (\d+)")
RAN = re.compile(r"\[TRAIN\] cycle (\d+): self-play")
LOSS = re.compile(r"\[LOSS\] cycle (\d+):")
SAVED = re.compile(r"\[SAVE\] Training cycle (\d+),")


@dataclasses.dataclass
class Summary:
    """What one hub went through."""

    hub: str
    trials: int = 0
    commit_window: int = 0
    """Kills after a cycle's [LOSS] line and before its [SAVE] line: inside the save-and-commit step."""
    landed: int = 0
    """Of those, how many found the commit on the hub all the same (the upload had completed)."""
    torn: int = 0
    """Kills that left evidence of a write cut short: temporary files in the local hub, an upload the fake Hub
    received only part of."""
    mid_upload: int = 0
    """Kills that came while the fake's storage host was receiving an LFS upload (fake Hub with LFS)."""
    finished: int = 0
    """Runs that finished before their kill came."""
    resumes_checked: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


class Child:
    """``l4demons train`` in its own process group, its output read by a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "l4demons", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self.lines: list[str] = []
        self.losses = 0
        self.killed_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if LOSS.search(line):
                self.losses += 1

    def wait_for_loss(self, n: int, timeout: float = 120) -> None:
        """Until the n-th cycle's [LOSS] line (or the end of the run)."""
        deadline = time.time() + timeout
        while self.losses < n and self.proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)

    def kill(self) -> bool:
        """SIGKILL the whole group; False if the run had already ended."""
        alive = self.proc.poll() is None
        if alive:
            self.killed_at = time.monotonic()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                alive = False
        self.proc.wait()
        self._reader.join(timeout=10)
        return alive

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


class LocalTarget:
    """A local hub directory."""

    name = "local"

    def __init__(self, work: Path) -> None:
        self.path = work / "hub"
        self.uri = str(self.path)
        self.env: dict[str, str] = {}
        self._seen: set[Path] = set()

    def torn(self) -> int:
        """New temporary files a cut-short writer left since the last call (the next commit sweeps them)."""
        names = {d / n for d in (self.path, self.path / "objects", self.path / "commits") if d.is_dir()
                 for n in os.listdir(d) if n.startswith(".tmp-")}
        new, self._seen = names - self._seen, names
        return len(new)

    def open(self, work: Path):
        from l4demons.hub.local import LocalHub

        return LocalHub(self.path)

    def close(self) -> None:
        pass


class HFTarget:
    """The fake Hugging Face Hub, in this process, on loopback (binary files through LFS unless ``inline``)."""

    name = "hf"

    def __init__(self, work: Path, inline: bool = False) -> None:
        from fake_hf import FakeHub

        self.fake = FakeHub(lfs=not inline, upload_rate=None if inline else UPLOAD_RATE).start()
        self.name = "hf-inline" if inline else "hf"
        self.uri = f"hf://{REPO}"
        self.env = dict(HF_CLIENT_ENV, HF_ENDPOINT=self.fake.endpoint, HF_TOKEN="hf_write",
                        HF_HOME=str(work / "hf-home"))
        self._aborted = 0
        self._checks = 0

    def torn(self) -> int:
        """Uploads the fake received only part of since the last call."""
        new = len(self.fake.aborted) - self._aborted
        self._aborted = len(self.fake.aborted)
        return new

    def mid_upload(self, kills: list[float]) -> int:
        """Kills (``time.monotonic()``) that came while the storage host was receiving an LFS upload."""
        return sum(any(start <= t <= end for start, end in self.fake.uploads) for t in kills)

    def open(self, work: Path):
        from l4demons.hub.hf import HFHub

        self._checks += 1  # a fresh cache each time: the check really downloads and verifies
        return HFHub(self.uri, token="hf_write", endpoint=self.fake.endpoint,
                     cache_dir=work / f"check-cache-{self._checks}", retries=2, retry_delay=0.05)

    def close(self) -> None:
        self.fake.stop()


def child_env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    """The trainer's environment: its own data, cache and HF folders under ``work``, nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in ("L4D_HUB", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_CACHE")}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", XDG_DATA_HOME=str(work / "xdg-data"),
               XDG_CACHE_HOME=str(work / "xdg-cache"), HF_HOME=str(work / "hf-home"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def check_head(hub) -> tuple[str | None, int | None]:
    """``(head id, its cycle)``, or ``(None, None)`` when the hub holds no model yet; raises on a bad file."""
    from l4demons.checkpoint import (BEST_FILE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, TrainingState,
                                     load_optimizer, read_metrics, replay_file)
    from l4demons.network import load_network
    from l4demons.replay import ReplayChunk

    head = hub.head()
    if head is None or MODEL_FILE not in hub.list_files(head):
        return None, None
    if hasattr(hub, "verify"):
        hub.verify(head)
    load_network(hub.download(MODEL_FILE, head))
    best = hub.download(BEST_FILE, head)
    if best is not None:
        load_network(best)
    state = TrainingState.load(hub.download(STATE_FILE, head))
    optimizer = hub.download(OPTIMIZER_FILE, head)
    if optimizer is not None:
        load_optimizer(optimizer)
    for name in state.replay_chunks:
        path = hub.download(replay_file(name), head)
        if path is None:
            raise AssertionError(f"replay chunk {name} named by the state of {head[:8]} is not in the commit")
        ReplayChunk.load(path)
    cycles = [r["cycle"] for r in read_metrics(hub.download(METRICS_FILE, head))]
    if cycles != list(range(1, state.cycle + 1)):
        raise AssertionError(f"metrics rows {cycles} do not match cycle {state.cycle} of {head[:8]}")
    return head, state.cycle


def check_resume(out: str, expected: tuple[str, int] | None, summary: Summary, label: str) -> None:
    """The run after a kill must resume from the head the check found, and train the next cycle."""
    if expected is None:
        return
    m = RESUMING.search(out)
    if m is None:
        if RAN.search(out) or "empty hub" in out:
            summary.failures.append(f"{label}: trained without resuming from {expected[0][:8]}")
        return  # killed before it got that far
    summary.resumes_checked += 1
    if (m.group(1), int(m.group(2))) != (expected[0][:8], expected[1]):
        summary.failures.append(f"{label}: resumed from {m.group(1)} cycle {m.group(2)}, expected "
                                f"{expected[0][:8]} cycle {expected[1]}")
    ran = RAN.search(out)
    if ran and int(ran.group(1)) != expected[1] + 1:
        summary.failures.append(f"{label}: trained cycle {ran.group(1)} after cycle {expected[1]}")


def run_trials(kind: str, trials: int, seed: int, work: Path, say=print, max_delay: float = 5.0,
               cycles: int = 12, window_share: float = 0.5) -> Summary:
    """``trials`` kills on a fresh hub of ``kind`` ("local" or "hf"), then the final resume."""
    work.mkdir(parents=True, exist_ok=True)
    target = LocalTarget(work) if kind == "local" else HFTarget(work, inline=kind == "hf-inline")
    window = 1.5 if kind == "hf" else 0.1  # how long a commit of the tiny net takes, about
    kills: list[float] = []
    env = child_env(work, target.env)
    rng = random.Random(f"{seed}-{kind}")
    summary = Summary(kind)
    t0 = time.time()
    expected: tuple[str, int] | None = None
    try:
        for k in range(trials):
            child = Child(["train", "--hub", target.uri, "--cycles", str(cycles), *FAST], env)
            if rng.random() >= window_share:
                delay = rng.uniform(0.2, max_delay)
                where = f"{delay:.1f}s after the start"
                try:
                    child.proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    pass
            else:
                n = rng.randint(1, cycles)
                where = f"in the commit window of its cycle #{n}"
                child.wait_for_loss(n)
                time.sleep(rng.uniform(0.0, window))
            killed = child.kill()
            if killed and child.killed_at is not None:
                kills.append(child.killed_at)
            out = child.output
            summary.trials += 1
            summary.finished += not killed
            label = f"{kind} trial {k + 1}"
            check_resume(out, expected, summary, label)
            losses, saved = LOSS.findall(out), SAVED.findall(out)
            in_window = killed and bool(losses) and (not saved or int(saved[-1]) < int(losses[-1]))
            torn = target.torn()
            summary.torn += torn > 0
            try:
                head, cycle = check_head(target.open(work))
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the benchmark
                summary.failures.append(f"{label}: the hub's head does not load: {type(e).__name__}: {e}")
                break
            if in_window:
                summary.commit_window += 1
                summary.landed += cycle is not None and cycle >= int(losses[-1])
            expected = (head, cycle) if head is not None else None
            say(f"  {label}: {'finished before its kill' if not killed else 'killed ' + where}, head "
                f"{head[:8] if head else '-'} cycle {cycle}{', torn write' if torn else ''}")
        summary.mid_upload = target.mid_upload(kills) if hasattr(target, "mid_upload") else 0
        final = Child(["train", "--hub", target.uri, "--cycles", "1", *FAST], env)
        code = final.finish(timeout=300)
        if code != 0:
            summary.failures.append(f"{kind} final run exited {code}:\n{final.output[-2000:]}")
        check_resume(final.output, expected, summary, f"{kind} final run")
        head, cycle = check_head(target.open(work))
        if expected is not None and cycle != expected[1] + 1:
            summary.failures.append(f"{kind} final run: head cycle {cycle}, expected {expected[1] + 1}")
    finally:
        target.close()
        summary.seconds = time.time() - t0
    return summary


def table(summaries: list[Summary]) -> str:
    cols = ["hub", "trials", "kills in the commit window", "commit landed", "torn writes", "kills mid-LFS-upload",
            "finished first", "resumes checked", "corrupt heads / failures", "seconds"]
    rows = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    for s in summaries:
        cells = [s.hub, s.trials, s.commit_window, s.landed, s.torn, s.mid_upload if s.hub == "hf" else "-",
                 s.finished, s.resumes_checked, len(s.failures), f"{s.seconds:.0f}"]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20, help="kills per hub (default 20)")
    p.add_argument("--hub", choices=[*KINDS, "both"], default="both", help="both: local and hf (LFS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-delay", type=float, default=5.0, help="latest random kill, in seconds after the start")
    p.add_argument("--window-share", type=float, default=0.5,
                   help="share of the kills aimed at a commit window (1: all, the LFS uploads' test)")
    p.add_argument("--work", default=None, help="folder for the hubs and caches (default: a temporary one)")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="l4d-crash-"))
    summaries = []
    for kind in (["local", "hf"] if args.hub == "both" else [args.hub]):
        print(f"{kind}: {args.trials} trials (seed {args.seed})", flush=True)
        summaries.append(run_trials(kind, args.trials, args.seed, work / kind, max_delay=args.max_delay,
                                    window_share=args.window_share))
    print()
    print(table(summaries))
    failures = [f for s in summaries for f in s.failures]
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
