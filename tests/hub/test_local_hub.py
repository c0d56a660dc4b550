"""LocalHub: crash safety (kill -9, failures at every write), several processes, bad paths."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_env

import l4demons.hub.local as local_mod
from l4demons.hub.base import CorruptFile, HubError
from l4demons.hub.local import LocalHub

WORKER = str(Path(__file__).with_name("hub_worker.py"))


def _assert_intact(hub: LocalHub) -> None:
    """HEAD loads, every file of HEAD verifies, and the parent chain is complete."""
    history = hub.history()
    assert history, "the hub lost its commits"
    assert history[0].id == hub.head()
    assert history[-1].parent is None
    hub.verify()
    for name in hub.list_files():
        assert hub.download(name) is not None


@pytest.mark.parametrize("trial", range(6))
def test_kill_9_mid_commit_leaves_last_good_commit(tmp_path: Path, trial: int) -> None:
    path = tmp_path / "hub"
    child = subprocess.Popen(
        [sys.executable, WORKER, "loop", str(path)], stdout=subprocess.PIPE, env=child_env(), text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"  # one commit is in
        # The kill lands at a random point of the commit loop (each commit writes ~2 MB with fsyncs).
        random.seed(trial)
        try:
            child.wait(timeout=random.uniform(0.0, 0.3))
        except subprocess.TimeoutExpired:
            pass
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    hub = LocalHub(path)
    _assert_intact(hub)
    # The lock died with the child; the next commit works and sweeps its temporary files.
    src = tmp_path / "next.bin"
    src.write_bytes(b"next")
    hub.commit({"model.pt": src}, "after the crash", hub.head())
    _assert_intact(hub)
    leftovers = [p for p in path.rglob(".tmp-*")]
    assert leftovers == []


class _Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


def test_a_crash_before_any_rename_keeps_the_previous_commit(tmp_path: Path, monkeypatch) -> None:
    hub = LocalHub(tmp_path / "hub")
    src = tmp_path / "a.bin"
    src.write_bytes(b"first")
    first = hub.commit({"model.pt": src, "state.pt": src}, "first", None)
    real_replace = os.replace
    renames_per_commit = 4  # two objects, the commit record, HEAD
    for crash_at in range(renames_per_commit):

        def replace(a, b, _calls=[0], _crash_at=crash_at):  # noqa: B006 - a per-loop counter
            if _calls[0] == _crash_at:
                raise _Crash
            _calls[0] += 1
            return real_replace(a, b)

        monkeypatch.setattr(local_mod.os, "replace", replace)
        src.write_bytes(os.urandom(1000))
        with pytest.raises(_Crash):
            hub.commit({"model.pt": src, "state.pt": src, "metrics.jsonl": tmp_path / "a.bin"}, "lost", first.id)
        monkeypatch.setattr(local_mod.os, "replace", real_replace)
        fresh = LocalHub(tmp_path / "hub")
        assert fresh.head() == first.id
        assert fresh.download("model.pt").read_bytes() == b"first"
        _assert_intact(fresh)


def test_two_processes_committing_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "hub"
    n = 12
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "commits", str(path), tag, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            text=True,
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0 and out.startswith("done")
    hub = LocalHub(path)
    messages = [c.message for c in hub.history()]
    assert sorted(messages) == sorted(f"{t} commit {i}" for t in "ab" for i in range(n))
    assert set(hub.list_files()) == {f"{t}-{i}.txt" for t in "ab" for i in range(n)}
    for t in "ab":  # each process's commits are in its own order
        mine = [m for m in reversed(messages) if m.startswith(t)]
        assert mine == [f"{t} commit {i}" for i in range(n)]
    _assert_intact(hub)


def test_unusable_path_is_a_one_line_hub_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HubError) as caught:
        LocalHub(blocker / "hub")
    message = str(caught.value)
    assert "\n" not in message and str(blocker / "hub") in message and "--hub" in message
    with pytest.raises(HubError, match="is a file"):
        LocalHub(blocker)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_hub_can_be_read_but_not_written(tmp_path: Path) -> None:
    hub = LocalHub(tmp_path / "hub")
    src = tmp_path / "a.bin"
    src.write_bytes(b"w")
    first = hub.commit({"model.pt": src}, "c1", None)
    os.chmod(hub.path, 0o555)
    try:
        reader = LocalHub(hub.path)
        assert reader.download("model.pt").read_bytes() == b"w"
        with pytest.raises(HubError, match="Cannot write"):
            reader.commit({"model.pt": src}, "c2", first.id)
    finally:
        os.chmod(hub.path, 0o755)


def test_commit_record_and_ids(tmp_path: Path) -> None:
    hub = LocalHub(tmp_path / "hub")
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    info = hub.commit({"model.pt": src}, "c1", None)
    assert len(info.id) == 40 and int(info.id, 16) >= 0
    record = json.loads((hub.path / "commits" / f"{info.id}.json").read_text())
    assert record["files"]["model.pt"]["size"] == 3
    assert (hub.path / "HEAD").read_text().strip() == info.id
    # A damaged record is reported, not trusted.
    (hub.path / "commits" / f"{info.id}.json").write_text(json.dumps({**record, "message": "forged"}))
    with pytest.raises(CorruptFile):
        hub.history()


def test_missing_object_is_corrupt(tmp_path: Path) -> None:
    hub = LocalHub(tmp_path / "hub")
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    hub.commit({"model.pt": src}, "c1", None)
    for obj in (hub.path / "objects").iterdir():
        obj.unlink()
    with pytest.raises(CorruptFile, match="missing"):
        hub.download("model.pt")


def test_bad_inputs(tmp_path: Path) -> None:
    hub = LocalHub(tmp_path / "hub")
    with pytest.raises(FileNotFoundError):
        hub.commit({"model.pt": tmp_path / "nope"}, "c1", None)
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(ValueError):
            hub.commit({bad: src}, "c1", None)
    assert hub.head() is None


def test_permission_errors_while_committing_name_the_hub(tmp_path: Path, monkeypatch) -> None:
    hub = LocalHub(tmp_path / "hub")
    src = tmp_path / "a.bin"
    src.write_bytes(b"w")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(local_mod.os, "open", denied)  # the lock file cannot be opened
    with pytest.raises(HubError, match="Cannot write to the local hub") as caught:
        hub.commit({"model.pt": src}, "c1", None)
    assert str(hub.path) in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.undo()
    monkeypatch.setattr(local_mod.os, "replace", denied)  # the object store is read-only
    with pytest.raises(HubError, match="Cannot write to the local hub"):
        hub.commit({"model.pt": src}, "c1", None)
    assert hub.head() is None
