"""Shared fixtures: small networks and a uniform evaluator, so tests stay fast."""

from __future__ import annotations

from collections.abc import Callable

import gzip
import importlib.util
import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from l4demons.encoding import POLICY_SIZE

# No per-example deadline: a loaded 2-core machine (CI beside a benchmark) makes any wall-clock bound flaky.
settings.register_profile("l4demons", deadline=None)
settings.load_profile("l4demons")


class UniformNet(torch.nn.Module):
    """Equal priors everywhere and a value of zero: search alone must find tactics."""

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = planes.shape[0]
        return torch.zeros(n, POLICY_SIZE), torch.zeros(n, 3)


@pytest.fixture(scope="session")
def bench_script() -> Callable[[str], types.ModuleType]:
    """``bench_script("crash")``: the script ``bench/crash.py`` imported as a module (once a session), to test
    its parts in-process."""
    loaded: dict[str, types.ModuleType] = {}

    def load(name: str) -> types.ModuleType:
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"l4d_bench_{name}",
                                                          Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
            module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load


@pytest.fixture
def uniform_net() -> UniformNet:
    return UniformNet()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """A test that runs ``l4demons.cli.main`` in this process has its logging pointed at the captured stdout,
    which pytest closes after the test: put the root logger back, so no later test logs to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that use :func:`material_net` run on one xdist worker per value head (``--dist loadgroup``, the
    Makefile's), so each head's half-minute training happens once a run, and the two heads train at once.

    First among the hooks: xdist's worker reads the groups into the test ids in its own hook, which without
    ``tryfirst`` ran before this one and found none; and from pytest 9.2 on, xdist cannot write them into the
    ids at all (pyproject.toml pins pytest below it). Either way the pool net trained twice a run.
    """
    for item in items:
        if "material_net" in getattr(item, "fixturenames", ()):
            head = getattr(item, "callspec", None) and item.callspec.params.get("value_head")
            item.add_marker(pytest.mark.xdist_group("material_net" if head in (None, "pool") else f"material_net_{head}"))


@pytest.fixture(scope="session")
def material_positions() -> list:
    """The material net's 4000 training positions: ``random_positions(4000, default_rng(0))``, stored."""
    import chess

    stored = Path(__file__).parent / "data" / "material_positions.fen.gz"
    return [chess.Board(fen) for fen in gzip.decompress(stored.read_bytes()).decode().splitlines()]


@pytest.fixture(scope="session")
def material_net(material_positions) -> Callable[[str], tuple[object, torch.nn.Module]]:
    """``material_net(value_head)``: a b2c32 net trained on the materials label, and its probe before training.

    Trained once a session per value head ("pool" or "fc"): the learning-signal test checks what it learned,
    the best-model gate plays it against a weakened copy. 4000 positions and 400 steps (13 passes): on 1500
    and 250 (21 passes) the pooled head memorised and, depending on the machine's arithmetic, missed the
    rook; measured over seeds 0-2, both heads see every piece. One thread, as every test runs. The positions
    are stored (``material_positions``): generating them in python-chess took 11 s a head.
    """
    from l4demons.learner import Learner, LearnerConfig
    from l4demons.network import NetConfig, build_network
    from l4demons.probes import material_chunk, probe
    from l4demons.replay import ReplayWindow

    trained: dict[str, tuple[object, torch.nn.Module]] = {}

    def get(value_head: str) -> tuple[object, torch.nn.Module]:
        if value_head not in trained:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                rng = np.random.default_rng(0)
                window = ReplayWindow()
                window.add(material_chunk(material_positions))
                torch.manual_seed(0)
                net = build_network(NetConfig(blocks=2, channels=32, value_hidden=64, value_head=value_head), seed=0)
                before = probe(net)
                learner = Learner(net, LearnerConfig(batch_size=128, lr=3e-3, warmup_steps=1, value_target_mix=0.0,
                                                     value_weight=1.0))
                learner.train_steps(window, 400, rng)
                trained[value_head] = (before, net)
            finally:
                torch.set_num_threads(threads)
        return trained[value_head]

    return get
