"""The learner's average of recent weights: what the run plays, while training goes on from the raw weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l4demons.learner import Learner, LearnerConfig
from l4demons.network import NetConfig, build_network
from l4demons.probes import material_chunk, random_positions
from l4demons.replay import ReplayWindow


def window() -> ReplayWindow:
    w = ReplayWindow()
    w.add(material_chunk(random_positions(300, np.random.default_rng(0))))
    return w


def learner(ema_steps: int) -> Learner:
    torch.manual_seed(0)
    return Learner(build_network(NetConfig.from_name("tiny"), seed=0), LearnerConfig(batch_size=32, ema_steps=ema_steps))


def test_the_average_follows_the_raw_weights_by_its_decay():
    lrn, data = learner(ema_steps=4), window()
    start = {k: v.clone() for k, v in lrn.net.state_dict().items()}
    expected = {k: v.clone().float() for k, v in start.items()}
    rng = np.random.default_rng(1)
    for n in range(1, 6):
        lrn.train_steps(data, 1, rng)
        decay = min(1 - 1 / 4, (1 + n) / (10 + n))
        for k, v in lrn.net.state_dict().items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
    played = lrn.played_state_dict()
    name = "policy_out.weight"
    assert torch.allclose(played[name], expected[name], atol=1e-6)
    assert not torch.equal(played[name], lrn.net.state_dict()[name])  # training goes on from the raw weights
    assert not torch.equal(played[name], start[name])


def test_without_averaging_the_run_plays_its_raw_weights():
    lrn = learner(ema_steps=0)
    lrn.train_steps(window(), 3, np.random.default_rng(1))
    assert lrn.ema is None and "ema" not in lrn.state_dict()
    raw = lrn.net.state_dict()
    assert all(torch.equal(v, raw[k]) for k, v in lrn.played_state_dict().items())


def test_the_average_survives_a_resume_and_starts_afresh_without_one():
    lrn, data = learner(ema_steps=8), window()
    lrn.train_steps(data, 5, np.random.default_rng(1))
    saved = lrn.state_dict()
    again = learner(ema_steps=8)
    again.net.load_state_dict(lrn.net.state_dict())
    again.load_state_dict(saved)
    assert all(torch.equal(v, lrn.played_state_dict()[k]) for k, v in again.played_state_dict().items())
    old = {k: v for k, v in saved.items() if k not in ("ema", "ema_updates")}  # a commit from before averaging
    fresh = learner(ema_steps=8)
    fresh.net.load_state_dict(lrn.net.state_dict())
    fresh.reset_average()
    fresh.load_state_dict(old)
    raw = fresh.net.state_dict()
    assert all(torch.equal(v, raw[k]) for k, v in fresh.played_state_dict().items())


def test_negative_steps_are_refused():
    with pytest.raises(ValueError, match="ema_steps"):
        LearnerConfig(ema_steps=-1)
