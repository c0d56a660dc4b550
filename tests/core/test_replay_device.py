"""Batches assembled on the learner's device match the host reference bit for bit, and a step never syncs."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from l4demons.learner import Learner, LearnerConfig
from l4demons.losses import value_target, value_target_tensor
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.replay_device import TrainBatch
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def window():
    """Three chunks of short games, some held out, the last positions of some games played on."""
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=40, concurrent_games=12)
    games = play_games(ev, cfg, 12, np.random.default_rng(3))
    games = [dataclasses.replace(g, played_on=min(len(g), k % 5)) for k, g in enumerate(games)]
    w = ReplayWindow()
    for k in range(3):
        w.add(ReplayChunk.from_games(f"00000{k}-dev", games[4 * k : 4 * k + 6], validation_every=3))
    return w


@pytest.fixture(scope="module")
def mixed(window):
    """The window's chunks with the first one as a teacher's (a warm start's labelled positions)."""
    w = ReplayWindow()
    w.add(dataclasses.replace(window.chunks[0], name="000000-warm-0d0e0f00"))
    for c in window.chunks[1:]:
        w.add(c)
    return w


def assert_same(reference: TrainBatch, batch: TrainBatch) -> None:
    for f in dataclasses.fields(TrainBatch):
        a, b = getattr(reference, f.name), getattr(batch, f.name).cpu()
        assert a.dtype == b.dtype and a.shape == b.shape, f.name
        assert torch.equal(a, b), f.name


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_device_batches_match_the_host_reference(window, batch_size):
    device = window.on_device("cpu")
    for seed in range(3):
        reference = window.sample(batch_size, np.random.default_rng(seed))
        assert reference.played_on.any() or batch_size < 256
        assert_same(TrainBatch.from_batch(reference), device.sample(batch_size, np.random.default_rng(seed)))


def test_the_value_target_on_the_device_is_the_host_one(window, mixed):
    for batch in (window.sample(64, np.random.default_rng(1)), mixed.sample(64, np.random.default_rng(1), 0.5)):
        for mix in (0.0, 0.3, 1.0):
            assert torch.equal(value_target_tensor(TrainBatch.from_batch(batch), mix),
                               torch.from_numpy(value_target(batch, mix)))


def test_validation_batches_match_the_host_reference(window):
    reference = window.validation_batches(16, limit=50)
    batches = list(window.on_device("cpu").validation_batches(16, limit=50))
    assert len(batches) == len(reference) == 4
    for r, b in zip(reference, batches):
        assert_same(TrainBatch.from_batch(r), b)
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1), LearnerConfig(batch_size=16))
    assert learner.losses(TrainBatch.from_batch(r) for r in window.validation_batches(16)) == \
        learner.validation_losses(window)


def test_a_position_without_policy_entries_gathers_alike(window):
    c = window.chunks[0]
    offsets = c.policy_offsets.copy()
    offsets[1] = offsets[0]  # position 0 gives its entries to position 1
    w = ReplayWindow()
    w.add(dataclasses.replace(c, policy_offsets=offsets, validation=np.zeros(c.games, bool)))
    rows = np.array([0, 1, 0, 2, 1])
    assert_same(TrainBatch.from_batch(w._gather(np.zeros(5, np.int64), rows)), w.on_device("cpu").gather(rows))


def test_the_device_copy_is_made_once_per_change_of_the_window(window):
    w = ReplayWindow()
    w.add(window.chunks[0])
    first = w.on_device("cpu")
    assert w.on_device("cpu") is first
    w.add(window.chunks[1])
    second = w.on_device("cpu")
    assert second is not first and second.train_positions == w.train_positions
    with pytest.raises(ValueError, match="no training positions"):
        ReplayWindow().on_device("cpu").sample(4, np.random.default_rng(0))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
def test_batches_with_teacher_rows_match_the_host_reference(mixed, device):
    data = mixed.on_device(device)
    for share in (0.0, 0.3, 1.0):
        for batch_size in (1, 7, 256):
            reference = mixed.sample(batch_size, np.random.default_rng(batch_size), share)
            assert batch_size == 1 or reference.teacher.any() == (share > 0)
            batch = data.sample(batch_size, np.random.default_rng(batch_size), share)
            assert_same(TrainBatch.from_batch(reference), batch)
    for teacher in (False, True):
        reference = mixed.validation_batches(16, teacher=teacher)
        batches = list(data.validation_batches(16, teacher=teacher))
        assert len(batches) == len(reference) > 0
        for r, b in zip(reference, batches):
            assert (r.teacher == teacher).all()
            assert_same(TrainBatch.from_batch(r), b)


@cuda
def test_cuda_batches_match_the_host_reference(window):
    device = window.on_device("cuda")
    for batch_size in (1, 300):
        reference = TrainBatch.from_batch(window.sample(batch_size, np.random.default_rng(batch_size)))
        assert_same(reference, device.sample(batch_size, np.random.default_rng(batch_size)))
    for r, b in zip(window.validation_batches(16), device.validation_batches(16)):
        assert_same(TrainBatch.from_batch(r), b)


def _sync_warnings(fn) -> int:
    """How many synchronizing CUDA calls ``fn`` makes (torch's sync debug mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@cuda
@pytest.mark.parametrize("teacher_share", [0.0, 0.3])
def test_a_cuda_step_never_waits_for_the_device(mixed, teacher_share):
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1).cuda(), LearnerConfig(batch_size=64), "cuda")
    rng = np.random.default_rng(0)
    learner.train_steps(mixed, 2, rng, teacher_share)  # the window's copy to the device, the optimizer's state
    few = _sync_warnings(lambda: learner.train_steps(mixed, 2, rng, teacher_share))
    many = _sync_warnings(lambda: learner.train_steps(mixed, 12, rng, teacher_share))
    assert many == few <= 1  # the losses, read once per call
    assert learner.step == 16 and np.isfinite(learner.validation_losses(mixed).total)
