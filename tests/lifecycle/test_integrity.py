"""Damaged files at the head: refused, reported, and training goes on from the previous good commit.

Another writer puts commits on top of a good one: a truncated model.pt, a
model.pt holding pickled code, a training_state.pt cut short, and a model.pt
whose stored (local hub) or served (Hugging Face Hub) bytes are flipped, so
it fails its hash check. Each run must name every bad commit, resume from
the good one, and (when it trains) commit a cycle whose files all load on
top of the head; the bad commits stay in the history (it is never rewritten).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from l4demons.checkpoint import METRICS_FILE, MODEL_FILE, STATE_FILE, TrainingState, read_metrics, replay_file
from l4demons.hub.local import LocalHub
from l4demons.network import NetConfig, build_network, load_network, save_weights
from l4demons.replay import ReplayChunk

from train_cli import FAST, FAST_RESUME, REPO, RESUMING, URI, hf_env, load_files, ok, run_here

pytestmark = pytest.mark.slow

PICKLED_CODE_RAN = "pickled code ran"


class Evil:
    """Unpickling this runs code: what ``weights_only=True`` exists to refuse."""

    def __reduce__(self):
        return (print, (PICKLED_CODE_RAN,))


def bad_files(tmp_path: Path, good_model: bytes, good_state: bytes) -> dict[str, dict[str, bytes]]:
    """Files of the bad commits, by label."""
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "l4demons-weights-v1", "evil": Evil()}, pickled)
    return {
        "truncated model.pt": {MODEL_FILE: good_model[: len(good_model) // 2]},
        "pickled model.pt": {MODEL_FILE: pickled.read_bytes()},
        "truncated training_state.pt": {MODEL_FILE: other_model(tmp_path, 98), STATE_FILE: good_state[:100]},
        "flipped model.pt": {MODEL_FILE: other_model(tmp_path, 99)},  # good bytes, flipped when stored or served
    }


def other_model(tmp_path: Path, seed: int) -> bytes:
    """A good model.pt unlike any other (its own object in the local hub)."""
    path = tmp_path / f"other-{seed}.pt"
    save_weights(build_network(NetConfig.from_name("tiny"), seed=seed), NetConfig.from_name("tiny"), path)
    return path.read_bytes()


class LocalWriter:
    def __init__(self, hub_dir: Path, tmp_path: Path) -> None:
        self.hub, self.tmp = LocalHub(hub_dir), tmp_path

    def good(self) -> tuple[bytes, bytes]:
        return self.hub.download(MODEL_FILE).read_bytes(), self.hub.download(STATE_FILE).read_bytes()

    def push(self, label: str, files: dict[str, bytes], flip: bool) -> str:
        paths = {}
        for name, data in files.items():
            paths[name] = self.tmp / f"push-{len(os.listdir(self.tmp))}-{name}"
            paths[name].write_bytes(data)
        info = self.hub.commit(paths, f"Training cycle 2, Elo ~n/a, Loss 1.0000 ({label})", self.hub.head())
        if flip:  # bit rot in the hub's object store: the bytes no longer match the commit's hash
            obj = self.hub.path / "objects" / _local_entry(self.hub, info.id, MODEL_FILE)
            os.chmod(obj, 0o644)
            data = bytearray(obj.read_bytes())
            data[len(data) // 2] ^= 0x01
            obj.write_bytes(bytes(data))
        return info.id

    def head(self) -> str:
        return self.hub.head()

    def check_head(self) -> TrainingState:
        self.hub.verify()
        load_network(self.hub.download(MODEL_FILE))
        state = TrainingState.load(self.hub.download(STATE_FILE))
        for name in state.replay_chunks:
            ReplayChunk.load(self.hub.download(replay_file(name)))
        assert [r["cycle"] for r in read_metrics(self.hub.download(METRICS_FILE))] == list(range(1, state.cycle + 1))
        return state

    def parent(self, commit_id: str) -> str | None:
        return next(c.parent for c in self.hub.history() if c.id == commit_id)


def _local_entry(hub: LocalHub, commit_id: str, name: str) -> str:
    return json.loads((hub.path / "commits" / f"{commit_id}.json").read_text())["files"][name]["sha256"]


class HFWriter:
    def __init__(self, fake, tmp_path: Path) -> None:
        self.fake, self.tmp = fake, tmp_path

    def good(self) -> tuple[bytes, bytes]:
        files = self.fake.repos[REPO].commits[self.head()].files
        return files[MODEL_FILE], files[STATE_FILE]

    def push(self, label: str, files: dict[str, bytes], flip: bool) -> str:
        commit_id = self.fake.push(REPO, f"Training cycle 2, Elo ~n/a, Loss 1.0000 ({label})", files)
        if flip:  # the bytes stored are good; every download of them arrives with a flipped byte
            self.fake.corrupt.add((commit_id, MODEL_FILE))
        return commit_id

    def head(self) -> str:
        return self.fake.repos[REPO].main

    def check_head(self) -> TrainingState:
        return load_files(self.fake, self.head(), self.tmp)

    def parent(self, commit_id: str) -> str | None:
        return self.fake.repos[REPO].commits[commit_id].parent


@pytest.mark.parametrize("kind", ["local", "hf"])
def test_damaged_head_falls_back_to_the_last_good_commit(kind, tmp_path, request, monkeypatch, capsys):
    if kind == "local":
        uri, env = str(tmp_path / "hub"), None
    else:
        fake = request.getfixturevalue("fake")
        uri, env = URI, hf_env(fake, tmp_path)
    ok(run_here(["train", "--hub", uri, "--cycles", "1", "--games", "2", "--steps", "2", *FAST], tmp_path, monkeypatch,
                capsys, env=env))  # the good commit, in this process
    writer = LocalWriter(tmp_path / "hub", tmp_path) if kind == "local" else HFWriter(fake, tmp_path)
    good = writer.head()
    bad = bad_files(tmp_path, *writer.good())

    labels = list(bad)
    pushed = {label: writer.push(label, bad[label], flip=False) for label in labels[:2]}
    out = ok(run_here(["train", "--hub", uri, "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys, env=env))
    for label, commit_id in pushed.items():
        assert f"commit {commit_id[:8]} is unusable" in out, (label, out)
    m = RESUMING.search(out)
    assert m and m.group(1) == good[:8] and m.group(2) == "1", out
    assert PICKLED_CODE_RAN not in out

    pushed.update({label: writer.push(label, bad[label], flip=label.startswith("flipped")) for label in labels[2:]})
    head = writer.head()
    out = ok(run_here(["train", "--hub", uri, "--cycles", "1", "--games", "2", "--steps", "2", *FAST_RESUME],
                      tmp_path, monkeypatch, capsys, env=env))
    for label, commit_id in pushed.items():
        assert f"commit {commit_id[:8]} is unusable" in out, (label, out)
    assert "sha256" in out  # the flipped file failed its hash check, and the log says so
    m = RESUMING.search(out)
    assert m and m.group(1) == good[:8] and m.group(2) == "1", out
    assert f"the next commit goes on top of {head[:8]}" in out
    new = writer.head()
    assert writer.parent(new) == head  # history kept: the new cycle sits on top of the bad commits
    assert writer.check_head().cycle == 2
    assert "[SAVE] Training cycle 2, Elo ~n/a, Loss " in out and f"-> commit {new[:8]}" in out
