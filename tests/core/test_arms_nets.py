"""``bench/arms.py`` plays each arm's newest *played* net: with ``--ema-steps`` the average, not ``model.pt``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from l4demons.checkpoint import save_optimizer
from l4demons.hub.local import LocalHub
from l4demons.network import NetConfig, build_network, read_weights, save_weights

ROOT = Path(__file__).resolve().parents[2]
TINY = NetConfig.from_name("tiny")


def arms():
    spec = importlib.util.spec_from_file_location("arms_bench", ROOT / "bench" / "arms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arm(tmp_path: Path, name: str, average: dict | None) -> Path:
    raw, heavy = tmp_path / "model.pt", tmp_path / "optimizer.pt"
    save_weights(build_network(TINY, seed=1), TINY, raw)
    save_optimizer({"optimizer": {}, **({"ema": average} if average is not None else {})}, heavy)
    LocalHub(tmp_path / name / "hub").commit({"model.pt": raw, "optimizer.pt": heavy}, "cycle 3", parent=None)
    return tmp_path / name


def test_the_newest_net_is_the_average_when_the_arm_keeps_one(tmp_path: Path) -> None:
    average = build_network(TINY, seed=2).state_dict()
    bench = arms()
    played = read_weights(bench.final_net(arm(tmp_path, "ema", average), newest=True))[1]
    assert all(torch.equal(v, average[k]) for k, v in played.items())
    raw = build_network(TINY, seed=1).state_dict()
    plain = read_weights(bench.final_net(arm(tmp_path, "base", None), newest=True))[1]
    assert all(torch.equal(v, raw[k]) for k, v in plain.items())
    assert not all(torch.equal(v, average[k]) for k, v in plain.items())


def test_each_arm_runs_its_share_of_the_threads_and_its_own_source(tmp_path: Path) -> None:
    env = arms().arm_env(1, tmp_path / "old-tree")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"  # arms at once must not each take every core
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "old-tree" / "src")
    assert arms().arm_env(2).get("PYTHONPATH") == os.environ.get("PYTHONPATH")  # no source: the path as it is
