"""bench/search.py's arms: settings the bot knows, refused in one line otherwise."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture
def bench(bench_script):
    return bench_script("search")


def test_an_arm_names_search_settings(bench) -> None:
    assert bench.parse_arm("base=") == ("base", {})
    assert bench.parse_arm("x=c_puct=1.25 batch_size=8 reuse_tree=0 policy_temp=1.3") == (
        "x", {"c_puct": 1.25, "batch_size": 8, "reuse_tree": False, "policy_temp": 1.3})
    for bad in ("c_puct=1", "=c_puct=1", "x=cpuct=1", "x=c_puct", "x=c_puct=high"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_arm(bad)
