"""The learner under DistributedDataParallel: torchrun with 2 CPU ranks (gloo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from l4demons.hub.local import LocalHub
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games

import ddp_child
from train_cli import cli_env

CHILD = str(Path(__file__).with_name("ddp_child.py"))
pytestmark = pytest.mark.slow


def torchrun(nproc: int, args: list[str], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", CHILD, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_torchrun_two_ranks_one_cycle_one_commit_identical_weights(tmp_path):
    hub_dir = tmp_path / "hub"
    torchrun(2, ["cycle", str(tmp_path), str(hub_dir)], tmp_path)
    titles = [c.message.splitlines()[0] for c in LocalHub(hub_dir).history()]
    assert len(titles) == 2 and titles[0].startswith("Training cycle 1,")  # initial + exactly one cycle commit
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("module.") for k in a)


def test_ddp_loss_matches_a_single_process_on_the_same_data(tmp_path):
    """Same data, same total batch (2 x 32 vs 1 x 64): the loss curves agree within 10%.

    They cannot agree exactly: each rank normalises BatchNorm over its own 32
    positions and draws its own samples.
    """
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    games = play_games(ev, SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=40, concurrent_games=12),
                       12, np.random.default_rng(0))
    chunk_path = tmp_path / "data.npz"
    ReplayChunk.from_games("fixed", games, validation_every=0).save(chunk_path)
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir(), single_dir.mkdir()
    torchrun(2, ["learn", str(ddp_dir), str(chunk_path)], tmp_path)
    ddp_child.learn(str(single_dir), str(chunk_path), rank=0, world=1)  # the single process: this one (one thread)
    r0, r1 = torch.load(ddp_dir / "rank0.pt"), torch.load(ddp_dir / "rank1.pt")
    single = torch.load(single_dir / "rank0.pt")
    for k, v in r0["weights"].items():  # DDP keeps the ranks' parameters identical
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, r1["weights"][k], atol=1e-6), k
    ddp_loss = np.mean(r0["losses"][-10:] + r1["losses"][-10:])
    single_loss = np.mean(single["losses"][-10:])
    # it learned: few-simulation policy targets are nearly uniform, so the value loss shows it
    assert np.mean(r0["value_losses"][-10:]) < 0.8 * np.mean(r0["value_losses"][:3])
    assert abs(ddp_loss - single_loss) / single_loss < 0.10
