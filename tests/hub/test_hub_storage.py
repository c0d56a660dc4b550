"""Deleting files from the head, and pruning a hub under a size, on both backends (HF: the LFS fake)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import hf_maker
from fake_hf import FakeHub

from l4demons.hub.hf_cache import RepoCache, trim_cache
from l4demons.hub.local import LocalHub
from l4demons.hub.storage import StoredObject, plan_prune


def heavy(name: str) -> bool:
    return name == "optimizer.pt" or name.startswith("replay/")


@pytest.fixture(params=["local", "hf-lfs"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A hub that stores contents it can delete for good: the local hub, or the fake Hub with LFS."""
    if request.param == "local":
        return LocalHub(tmp_path / "hub")
    server = FakeHub(lfs=True).start()
    request.addfinalizer(server.stop)
    return hf_maker(server, tmp_path)()


def cycles(hub, write, n: int, window: int = 2) -> list[bytes]:
    """``n`` training-like commits: new weights, optimizer state and replay chunk each, the window's chunks kept."""
    models, parent = [], None
    for i in range(n):
        models.append(os.urandom(20_000))
        files = {"model.pt": write("m", models[-1]), "optimizer.pt": write("o", os.urandom(60_000)),
                 f"replay/{i:03d}.npz": write("r", os.urandom(30_000)), "metrics.jsonl": write("j", b"%d\n" % i)}
        stale = [f"replay/{j:03d}.npz" for j in range(i - window + 1)]
        parent = hub.commit(files, f"Training cycle {i + 1}", parent and parent.id, delete=stale)
    return models


def test_deleted_files_leave_the_head_but_not_history(hub, write) -> None:
    c1 = hub.commit({"replay/a.npz": write("a", b"\0a"), "replay/b.npz": write("b", b"\0b")}, "c1", None)
    c2 = hub.commit({"model.pt": write("m", b"\0w")}, "c2", c1.id, delete=["replay/a.npz", "replay/never.npz"])
    assert "replay/a.npz" not in c2.files and "replay/b.npz" in c2.files
    assert "replay/a.npz" not in hub.list_files() and hub.download("replay/a.npz") is None
    assert hub.download("replay/a.npz", c1.id).read_bytes() == b"\0a"  # history keeps it


def test_prune_keeps_every_model_and_the_head(store, write) -> None:
    models = cycles(store, write, 6)
    head_files = set(store.list_files())
    before = store.storage()
    limit = before - 5 * 60_000  # the old optimizer states must go; a few replay chunks too
    report = store.prune(limit, heavy)
    assert report.within and report.size_before == before and store.storage() == report.size_after <= limit
    assert report.deleted and all(d.split("@")[0] in ("optimizer.pt",) or d.startswith("replay/")
                                  for d in report.deleted)
    assert set(store.list_files()) == head_files
    history = [c for c in store.history() if c.message.startswith("Training cycle")]
    assert len(history) == 6
    for commit, model in zip(reversed(history), models):  # every model.pt in history still downloads
        assert store.download("model.pt", commit.id).read_bytes() == model
    for name in head_files:
        assert store.download(name) is not None
    assert "optimizer.pt" not in store.list_files(history[-1].id)  # pruned: the old commit no longer holds it
    assert store.prune(limit, heavy).deleted == ()  # under the limit: nothing more to do


def test_prune_squashes_only_when_allowed(store, write) -> None:
    models = cycles(store, write, 4)
    limit = 150_000  # more than the head holds, less than it and the weights' history
    report = store.prune(limit, heavy)
    assert not report.within and not report.squashed
    assert len([c for c in store.history() if c.message.startswith("Training cycle")]) == 4
    report = store.prune(limit, heavy, squash=True)
    assert report.squashed and report.within and store.storage() <= limit
    assert len(store.history()) == 1
    assert store.download("model.pt").read_bytes() == models[-1]


def test_dry_run_changes_nothing(store, write) -> None:
    cycles(store, write, 4)
    before = store.storage()
    report = store.prune(before - 100_000, heavy, dry_run=True)
    assert report.deleted and report.size_after <= before - 100_000 and store.storage() == before


def test_plan_prune_oldest_first_and_no_further_than_needed() -> None:
    objs = [StoredObject(f"{i:064x}", 10, frozenset([n]), float(t))
            for i, (n, t) in enumerate([("optimizer.pt", 3), ("replay/1.npz", 1), ("model.pt", 0),
                                        ("optimizer.pt", 2), ("optimizer.pt", 4)])]
    plan = plan_prune(objs, keep={objs[4].oid}, size=50, limit=31, prunable=heavy)
    assert [o.created_at for o in plan] == [1.0, 2.0]  # model.pt and the head's object are never candidates


def test_trim_cache_keeps_the_head_and_the_newest(tmp_path) -> None:
    storage = tmp_path / "models--me--l4d"
    cache = RepoCache(storage, keep_own=10)
    ids = [f"{i:040x}" for i in range(5)]
    for i, commit_id in enumerate(ids):
        src = tmp_path / f"w{i}"
        src.write_bytes(os.urandom(1000))
        cache.add_commit(commit_id, None, {"model.pt": src})
        os.utime(storage / "snapshots" / commit_id, (i, i))
    cache.remember_head(ids[0])
    (storage / "blobs" / "x.incomplete").write_bytes(b"part")
    assert trim_cache(tmp_path, keep=2) > 0
    assert sorted(p.name for p in (storage / "snapshots").iterdir()) == sorted([ids[0], ids[4]])
    assert len(list((storage / "blobs").iterdir())) == 2
