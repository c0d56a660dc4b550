"""The Hub contract, checked on both backends (LocalHub and HFHub on the fake Hub)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from conftest import hf_maker

from l4demons.hub.base import CorruptFile, Hub, HubConflict, HubNotFound, open_hub
from l4demons.hub.hf import HFHub
from l4demons.hub.local import LocalHub

AUTO = {".gitattributes"}  # what the Hub puts in a new repo by itself


def ours(names) -> set[str]:
    return set(names) - AUTO


def test_protocol_and_open_hub(tmp_path: Path) -> None:
    local = open_hub(str(tmp_path / "h"))
    remote = open_hub("hf://someone/repo", token="x")
    assert isinstance(local, LocalHub) and isinstance(local, Hub)
    assert isinstance(remote, HFHub) and isinstance(remote, Hub)
    assert remote.uri == "hf://someone/repo" and local.uri == str(tmp_path / "h")


def test_empty_hub(hub) -> None:
    assert hub.head() is None
    assert hub.download("model.pt") is None
    assert hub.list_files() == []
    assert hub.history() == []


def test_round_trip_identical_bytes(hub, write) -> None:
    model = os.urandom(300_000)
    files = {
        "model.pt": write("model.pt", model),
        "metrics.jsonl": write("m", b'{"cycle": 0}\n'),
        "empty.bin": write("e", b""),
    }
    info = hub.commit(files, "Initial model weights (randomly initialized)", None)
    assert hub.head() == info.id
    assert info.message == "Initial model weights (randomly initialized)"
    assert ours(info.files) == set(files) == ours(hub.list_files())
    assert hub.download("model.pt").read_bytes() == model
    assert hub.download("model.pt", revision=info.id).read_bytes() == model
    assert hub.download("metrics.jsonl").read_bytes() == b'{"cycle": 0}\n'
    assert hub.download("empty.bin").read_bytes() == b""
    assert hub.download("model_best.pt") is None


def test_files_not_named_are_carried_over(hub, write) -> None:
    c1 = hub.commit({"model.pt": write("a", b"weights-1"), "training_state.pt": write("b", b"state-1")}, "c1", None)
    c2 = hub.commit({"training_state.pt": write("b", b"state-2")}, "c2", c1.id)
    assert c2.parent == c1.id
    assert ours(c2.files) == {"model.pt", "training_state.pt"}
    assert hub.download("model.pt").read_bytes() == b"weights-1"
    assert hub.download("training_state.pt").read_bytes() == b"state-2"
    assert hub.download("training_state.pt", revision=c1.id).read_bytes() == b"state-1"


def test_stale_parent_conflicts_and_writes_nothing(hub, write) -> None:
    c1 = hub.commit({"model.pt": write("a", b"one")}, "c1", None)
    c2 = hub.commit({"model.pt": write("a", b"two")}, "c2", c1.id)
    before = [c.id for c in hub.history()]
    with pytest.raises(HubConflict) as caught:
        hub.commit({"model.pt": write("a", b"three"), "new.txt": write("n", b"x")}, "stale", c1.id)
    assert caught.value.head == c2.id
    with pytest.raises(HubConflict):  # "the hub is empty" is stale too
        hub.commit({"model.pt": write("a", b"four")}, "stale", None)
    assert [c.id for c in hub.history()] == before
    assert hub.head() == c2.id
    assert ours(hub.list_files()) == {"model.pt"}
    assert hub.download("model.pt").read_bytes() == b"two"


def test_history_newest_first_with_parents(hub, write) -> None:
    parent = None
    made = []
    for i in range(7):  # more than one page of the fake's commit list
        info = hub.commit({"metrics.jsonl": write("m", f"{i}\n".encode())}, f"Training cycle {i}", parent)
        made.append(info)
        parent = info.id
    history = hub.history()
    ours_only = history[: len(made)]
    assert [c.message for c in ours_only] == [f"Training cycle {i}" for i in reversed(range(7))]
    assert [c.id for c in ours_only] == [c.id for c in reversed(made)]
    for newer, older in itertools.pairwise(history):
        assert newer.parent == older.id
    assert history[-1].parent is None
    assert all(a.created_at >= b.created_at for a, b in itertools.pairwise(history))
    limited = hub.history(limit=4)
    assert [c.id for c in limited] == [c.id for c in history[:4]]
    assert limited[-1].parent == history[4].id


def test_rollback_makes_a_new_commit_with_old_files(hub, write) -> None:
    c1 = hub.commit({"model.pt": write("a", b"good"), "metrics.jsonl": write("m", b"1\n")}, "Training cycle 1", None)
    c2 = hub.commit({"model.pt": write("a", b"bad"), "extra.txt": write("x", b"x")}, "Training cycle 2", c1.id)
    rolled = hub.rollback(c1.id[:8])
    assert rolled.id not in (c1.id, c2.id)
    assert rolled.parent == c2.id
    assert rolled.message == f"Rollback to {c1.id[:8]}: Training cycle 1"
    assert hub.head() == rolled.id
    assert ours(hub.list_files()) == {"model.pt", "metrics.jsonl"}
    assert hub.download("model.pt").read_bytes() == b"good"
    assert hub.download("extra.txt") is None
    assert [c.id for c in hub.history()[:3]] == [rolled.id, c2.id, c1.id]  # history kept
    with pytest.raises(HubConflict):
        hub.rollback(c1.id, parent=c2.id)


def test_unknown_revision(hub, write) -> None:
    hub.commit({"model.pt": write("a", b"w")}, "c1", None)
    with pytest.raises(HubNotFound):
        hub.download("model.pt", revision="0" * 40)
    with pytest.raises(HubNotFound):
        hub.rollback("0" * 40)


def _corrupt(hub, name: str, request: pytest.FixtureRequest, tmp_path: Path):
    """Damage ``name`` at the head; the hub a reader sees it through (the committer's HF cache holds a good copy)."""
    if isinstance(hub, LocalHub):
        digest = {n: e for n, e in _local_files(hub).items()}[name]
        obj = hub.path / "objects" / digest
        os.chmod(obj, 0o644)
        data = bytearray(obj.read_bytes())
        data[len(data) // 2] ^= 0x01
        obj.write_bytes(bytes(data))
        return hub
    request.node.fake.corrupt.add(name)
    return hf_maker(request.node.fake, tmp_path)(cache=tmp_path / "another-machine")


def _local_files(hub: LocalHub) -> dict[str, str]:
    import json

    record = json.loads((hub.path / "commits" / f"{hub.head()}.json").read_text())
    return {n: e["sha256"] for n, e in record["files"].items()}


@pytest.mark.parametrize("name", ["model.pt", "metrics.jsonl"])
def test_corrupt_file_is_refused(hub, write, name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    hub.commit({name: write(name, os.urandom(50_000))}, "c1", None)
    reader = _corrupt(hub, name, request, tmp_path)
    with pytest.raises(CorruptFile, match="corrupt"):
        reader.download(name)
