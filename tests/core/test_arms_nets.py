"""``bench/arms.py`` plays each arm's newest *played* net: with ``--ema-steps`` the average, not ``model.pt``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from l4demons.checkpoint import save_optimizer
from l4demons.hub.local import LocalHub
from l4demons.network import NetConfig, build_network, read_weights, save_weights

TINY = NetConfig.from_name("tiny")


@pytest.fixture
def bench(bench_script):
    return bench_script("arms")


def arm(tmp_path: Path, name: str, average: dict | None) -> Path:
    raw, heavy = tmp_path / "model.pt", tmp_path / "optimizer.pt"
    save_weights(build_network(TINY, seed=1), TINY, raw)
    save_optimizer({"optimizer": {}, **({"ema": average} if average is not None else {})}, heavy)
    LocalHub(tmp_path / name / "hub").commit({"model.pt": raw, "optimizer.pt": heavy}, "cycle 3", parent=None)
    return tmp_path / name


def test_the_newest_net_is_the_average_when_the_arm_keeps_one(bench, tmp_path: Path) -> None:
    average = build_network(TINY, seed=2).state_dict()
    played = read_weights(bench.final_net(arm(tmp_path, "ema", average), newest=True))[1]
    assert all(torch.equal(v, average[k]) for k, v in played.items())
    raw = build_network(TINY, seed=1).state_dict()
    plain = read_weights(bench.final_net(arm(tmp_path, "base", None), newest=True))[1]
    assert all(torch.equal(v, raw[k]) for k, v in plain.items())
    assert not all(torch.equal(v, average[k]) for k, v in plain.items())


def test_each_arm_runs_its_share_of_the_threads_and_its_own_source(bench, tmp_path: Path) -> None:
    env = bench.arm_env(1, tmp_path / "old-tree")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"  # arms at once must not each take every core
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "old-tree" / "src")
    assert bench.arm_env(2).get("PYTHONPATH") == os.environ.get("PYTHONPATH")  # no source: the path as it is


def test_runs_that_disagree_widen_the_interval_that_counts_them(bench) -> None:
    agree = bench.across_runs("new vs base", [(50, 20, 50), (50, 20, 50)])
    assert agree.startswith("new vs base, 2 runs: +0, +0;") and agree.endswith("over runs +0 [+0, +0]")
    split = bench.across_runs("new vs base", [(80, 20, 20), (20, 20, 80)])
    pooled_lo = int(split.split("games pooled ")[1].split("[")[1].split(",")[0])
    runs_lo = int(split.split("over runs ")[1].split("[")[1].split(",")[0])
    assert runs_lo < pooled_lo < 0  # the games alone say ~0 +- 45; the runs' spread says far more
    assert "over runs" not in bench.across_runs("new vs base", [(60, 0, 40)])
    swept = bench.across_runs("new vs base", [(4, 0, 0), (3, 1, 0)])  # few games, one side scoring all
    assert "+inf]" in swept and swept.startswith("new vs base, 2 runs: +")


def test_seeds_are_distinct_integers(bench) -> None:
    assert bench.parse_seeds("3,4,5") == [3, 4, 5]
    for bad in ("3,x", "3,3", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_seeds(bad)


def test_a_net_cycles_back_is_the_one_that_cycle_committed(bench, tmp_path: Path) -> None:
    arm_dir = arm(tmp_path, "new", None)  # cycle 3: seed 1's weights
    hub = LocalHub(arm_dir / "hub")
    later = tmp_path / "later.pt"
    save_weights(build_network(TINY, seed=5), TINY, later)
    hub.commit({"model.pt": later}, "cycle 4", parent=hub.head())
    newest = read_weights(bench.final_net(arm_dir, newest=True))[1]
    one_back = bench.final_net(arm_dir, newest=True, back=1)
    before = read_weights(one_back)[1]
    assert one_back.name == "new-1.pt"  # its own player name
    assert all(torch.equal(v, build_network(TINY, seed=5).state_dict()[k]) for k, v in newest.items())
    assert all(torch.equal(v, build_network(TINY, seed=1).state_dict()[k]) for k, v in before.items())
    with pytest.raises(SystemExit, match="no net 2 cycle"):
        bench.final_net(arm_dir, newest=True, back=2)
