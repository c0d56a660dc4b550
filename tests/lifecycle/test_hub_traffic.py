"""A trainer against a Hub that limits commits and a user who limits storage.

Rate limit: the Hugging Face Hub allows about 128 commits an hour per
repository; here the fake allows 6 in any 20 s (the same order of
commits per cycle for a trainer whose cycles take a second or two instead
of minutes) and a trainer paced at one commit per 10 s (burst 2) must get
no 429 and lose no cycle: the cycles between commits go up folded.

Storage: cycles of a tiny network (50 here; ``L4D_TEST_CYCLES=100`` for the
issue's target, about two minutes), each committed, under a
``--max-repo-gb`` of a fraction of what they would take: after the run
the repository (as the fake Hub counts it, every LFS object included) is
within the limit, and every ``model.pt`` in its history still downloads.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from fake_hf import FakeHub
from l4demons.checkpoint import MODEL_FILE, OPTIMIZER_FILE
from l4demons.hub.hf import HFHub
from l4demons.learner import LearnerConfig
from l4demons.lifecycle import TrainConfig, Trainer
from l4demons.network import NetConfig, build_network, load_network, save_weights
from l4demons.selfplay import SelfPlayConfig

from train_cli import CYCLE_MESSAGE, FAST, REPO, URI, hf_env, load_files, ok, run_here

pytestmark = pytest.mark.slow


def test_a_fast_trainer_stays_under_the_rate_limit_and_loses_no_cycle(tmp_path, monkeypatch, capsys):
    with FakeHub(lfs=True, commit_limit=(6, 20.0)) as fake:
        fast = FAST[:-2]  # all but "--commit-interval 0"
        out = ok(run_here(["train", "--hub", URI, "--cycles", "30", "--games", "2", "--steps", "2", *fast,
                          "--commit-interval", "10"], tmp_path, monkeypatch, capsys, env=hf_env(fake, tmp_path)))
        assert fake.rate_limited == [], out  # not one request past the limit
        commits = fake.history(REPO)
        state = load_files(fake, commits[-1].id, tmp_path)  # every cycle's metrics row and replay chunk
        assert state.cycle == 30 and len(state.replay_chunks) == 30
        numbers = [int(m.group(1)) for c in commits if (m := CYCLE_MESSAGE.match(c.title))]
        assert numbers == sorted(numbers) and numbers[-1] == 30 and len(numbers) < 30  # folded, in order
        folded = [c for c in commits if "folded into this commit" in c.description]
        assert folded and "folded in)" in out
        saved = {int(c) for c in re.findall(r"cycle (\d+) saved on disk", out)}
        lines = [line for f in folded for line in f.description.splitlines() if line.startswith("Cycles ")]
        committed = set(numbers) | {int(c) for line in lines for c in re.findall(r"\d+", line.split(" are ")[0])}
        assert saved <= committed and committed >= set(range(1, 31))


def tiny_config(cycles: int, max_repo_gb: float) -> TrainConfig:
    return TrainConfig(cycles=cycles, games=1, cycle_seconds=0, steps=1, net="tiny", workers=1, elo_seconds=0, device="cpu",
                       commit_interval=0, max_repo_gb=max_repo_gb,
                       selfplay=SelfPlayConfig(simulations=2, fast_simulations=2, max_plies=16, concurrent_games=1),
                       learner=LearnerConfig(batch_size=16, ema_steps=4))  # the heavier case: bests are averages


def test_many_cycles_stay_under_max_repo_gb_and_every_model_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("L4D_OUTBOX", str(tmp_path / "outbox"))
    cycles = int(os.environ.get("L4D_TEST_CYCLES", "50"))
    probe = tmp_path / "probe.pt"
    save_weights(build_network(NetConfig.from_name("tiny")), NetConfig.from_name("tiny"), probe)
    model = probe.stat().st_size
    # Room for every model.pt and model_best.pt of history (with --ema-steps a new best is the average of
    # recent weights, a file of its own), the head's optimizer state, and the small files' history (metrics,
    # model card); every cycle's optimizer state (moments and average: three times the weights) would not fit.
    limit = int(1.5 * (2 * cycles + 1) * model) + 4_000_000
    with FakeHub(lfs=True, page_size=50) as fake:
        hub = HFHub(URI, token="hf_write", endpoint=fake.endpoint, cache_dir=tmp_path / "hf-cache", retries=2,
                    retry_delay=0.01, retry_budget=2)
        Trainer(tiny_config(cycles, limit / 1e9), hub).run()
        size = fake.used_storage(REPO)
        assert size <= limit, (size, limit)
        history = fake.history(REPO)
        optimizer = len(history[-1].files[OPTIMIZER_FILE])
        deleted = set(fake.deleted_lfs)
        assert size + len(deleted) * optimizer > limit  # without pruning it would not fit: old optimizer states went
        held = {hashlib.sha256(c.files[n]).hexdigest() for c in history for n in c.lfs}
        assert not deleted & held  # no commit of history points at a deleted object (history was rewritten)
        models = [c for c in history if MODEL_FILE in c.files]
        assert len(models) == cycles + 1  # the initial commit and one per cycle, all still in history
        reader = HFHub(URI, token="hf_write", endpoint=fake.endpoint, cache_dir=tmp_path / "reader", retries=2,
                       retry_delay=0.01)
        for c in models:
            load_network(reader.download(MODEL_FILE, c.id))
        assert OPTIMIZER_FILE in history[-1].files and OPTIMIZER_FILE not in history[1].files
        state = load_files(fake, history[-1].id, tmp_path)
        assert state.cycle == cycles
        assert not any(Path(tmp_path / "outbox").rglob("pending.json"))
