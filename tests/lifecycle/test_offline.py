"""The Hub goes away and comes back: start from the cache, keep cycles on disk, upload them later.

Each run is ``l4demons train`` in this process (``train_cli.run_here``; the Xet one a child): a new run
reads only what the last one left on disk (its HF cache and outbox folders), as a new process would.
"""

from __future__ import annotations

import json
import shutil

import pytest

from l4demons.checkpoint import replay_file

from train_cli import CYCLE_MESSAGE, FAST, FAST_RESUME, REPO, RESUMING, URI, hf_env, load_files, ok, run_cli, run_here

pytestmark = pytest.mark.slow

CYCLE = ["--cycles", "1", "--games", "2", "--steps", "2", *FAST_RESUME]


def outbox_cycles(tmp_path, machine: str = "a") -> list[int]:
    """Cycles waiting in the machine's outbox, oldest first."""
    metas = sorted((tmp_path / f"machine-{machine}" / "cache" / "l4demons" / "outbox").glob("*/[0-9]*/pending.json"))
    return [json.loads(m.read_text())["cycle"] for m in metas]


def cycles_of(fake) -> list[int]:
    return [int(m.group(1)) for c in fake.history(REPO) if (m := CYCLE_MESSAGE.match(c.title))]


def test_offline_start_keeps_cycles_on_disk_and_uploads_them_folded(fake, tmp_path, monkeypatch, capsys):
    env = hf_env(fake, tmp_path)
    ok(run_here(["train", "--hub", URI, "--cycles", "1", "--games", "2", "--steps", "2", *FAST], tmp_path, monkeypatch,
                capsys, env=env))
    head = fake.repos[REPO].main

    fake.stop()
    out = ok(run_here(["train", "--hub", URI, *CYCLE], tmp_path, monkeypatch, capsys, env=env))
    unreachable = [line for line in out.splitlines() if "[HF] hub unreachable" in line]
    assert len(unreachable) == 1 and f"cached commit {head[:8]}" in unreachable[0], out
    m = RESUMING.search(out)
    assert m and m.group(1) == head[:8] and m.group(2) == "1"
    assert sum("[SAVE] hub unreachable" in line for line in out.splitlines()) == 1, out
    assert "cycle 2 stays on disk" in out and outbox_cycles(tmp_path) == [2]

    # Still offline: the next run goes on from the waiting cycle 2, not from the cached commit.
    out = ok(run_here(["train", "--hub", URI, *CYCLE], tmp_path, monkeypatch, capsys, env=env))
    assert sum("[HF] hub unreachable" in line for line in out.splitlines()) == 1, out
    assert "continuing from cycle 2" in out and "[TRAIN] cycle 3: self-play" in out
    assert outbox_cycles(tmp_path) == [2, 3]

    fake.start()  # back, same port, same repos
    outbox = tmp_path / "machine-a" / "cache" / "l4demons" / "outbox"
    shutil.copytree(outbox, tmp_path / "outbox-copy")
    out = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys, env=env))
    # One commit carries both waiting cycles: the newest checkpoint, every replay chunk, every metrics row.
    assert out.count("(left on disk until now, cycles 2 folded in)") == 1 and "merged" not in out, out
    assert cycles_of(fake) == [1, 3] and outbox_cycles(tmp_path) == []
    commits = fake.history(REPO)
    assert commits[-2].id == head and commits[-1].parent == head
    assert "Cycles 2 are folded into this commit" in commits[-1].description
    state = load_files(fake, commits[-1].id, tmp_path)
    assert state.cycle == 3 and len(state.replay_chunks) == 3
    assert all(replay_file(n) in commits[-1].files for n in state.replay_chunks)

    # As if that run had been killed after the upload, before crossing the cycles off: they must not go up twice.
    shutil.rmtree(outbox)
    shutil.copytree(tmp_path / "outbox-copy", outbox)
    landed = fake.repos[REPO].main
    out = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys, env=env))
    # The Hub client finds every file already there and sends nothing; the trainer takes the commit as its own.
    assert "Training cycle 3, Elo ~n/a, Loss" in out and f"commit {landed[:8]}" in out and "merged" not in out, out
    assert fake.repos[REPO].main == landed and cycles_of(fake) == [1, 3] and outbox_cycles(tmp_path) == []


def test_cycles_left_on_disk_are_merged_when_another_machine_committed_meanwhile(fake, tmp_path, monkeypatch, capsys):
    a, b = hf_env(fake, tmp_path, machine="a"), hf_env(fake, tmp_path, machine="b")
    ok(run_here(["train", "--hub", URI, "--cycles", "1", "--games", "2", "--steps", "2", *FAST], tmp_path, monkeypatch,
                capsys, env=a))
    fake.stop()
    ok(run_here(["train", "--hub", URI, *CYCLE], tmp_path, monkeypatch, capsys, env=a))
    assert outbox_cycles(tmp_path, "a") == [2]
    fake.start()
    ok(run_here(["train", "--hub", URI, *CYCLE], tmp_path, monkeypatch, capsys, env=b))  # machine b's own cycle 2
    assert cycles_of(fake) == [1, 2]

    out = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys, env=a))
    assert "merged this machine's cycle 2 onto it as cycle 3" in out, out
    assert cycles_of(fake) == [1, 2, 3] and outbox_cycles(tmp_path, "a") == []
    head = fake.repos[REPO].commits[fake.repos[REPO].main]
    state = load_files(fake, head.id, tmp_path)
    assert state.cycle == 3
    chunks = {n for n in head.files if n.startswith("replay/")}
    assert len(chunks) == 3  # cycle 1's, machine b's cycle 2 and machine a's merged one
    assert {replay_file(n) for n in state.replay_chunks} == chunks


XET_ON = {"HF_HUB_DISABLE_XET": "0", "HF_XET_CLIENT_RETRY_MAX_ATTEMPTS": "1", "HF_XET_CLIENT_RETRY_BASE_DELAY": "10ms",
          "HF_XET_CLIENT_RETRY_MAX_DURATION": "2s"}


def test_failed_transfers_keep_the_cycle_on_disk(fake, tmp_path, monkeypatch, capsys):
    """An LFS upload that keeps failing, then a Xet upload whose storage is unreachable: "hub unavailable" both
    times, the cycles wait in the outbox, and the next run that can upload takes them up."""
    env = hf_env(fake, tmp_path)
    ok(run_here(["train", "--hub", URI, "--cycles", "1", "--games", "2", "--steps", "2", *FAST], tmp_path, monkeypatch,
                capsys, env=env))
    head = fake.repos[REPO].main
    fake.fail("PUT", "/lfs-upload/", status=400, times=1000)  # every pre-signed upload refused
    out = ok(run_here(["train", "--hub", URI, *CYCLE], tmp_path, monkeypatch, capsys, env=env))
    assert "a file transfer failed" in out and "cycle 2 stays on disk" in out, out
    fake.heal()
    # Xet: the CAS is down. A child process: the Xet client reads its retry settings once, at its start.
    out = ok(run_cli(["train", "--hub", URI, *CYCLE], tmp_path, env={**env, **XET_ON}))
    assert "a file transfer failed" in out and "stay on disk" in out, out
    assert fake.count("GET", "/xet-write-token/") >= 1 and fake.repos[REPO].main == head
    assert outbox_cycles(tmp_path) == [2, 3]
    out = ok(run_here(["train", "--hub", URI, "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys, env=env))
    assert "(left on disk until now, cycles 2 folded in)" in out, out
    assert cycles_of(fake) == [1, 3] and outbox_cycles(tmp_path) == []
    assert load_files(fake, fake.repos[REPO].main, tmp_path).cycle == 3
