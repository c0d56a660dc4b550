"""The learning rate's decay by positions generated (--lr-halflife), to its floor, over restarts."""

from __future__ import annotations

import pytest

from l4demons.learner import Learner, LearnerConfig
from l4demons.network import NetConfig, build_network


def learner(**kw) -> Learner:
    return Learner(build_network(NetConfig.from_name("tiny"), seed=0),
                   LearnerConfig(batch_size=8, lr=1e-3, warmup_steps=1, **kw))


def test_the_rate_halves_every_halflife_down_to_its_floor() -> None:
    lrn = learner(lr_halflife=1000, lr_floor=0.2)
    lrn.scheduler.step()  # past the warm-up
    assert lrn.decay_for(0) == pytest.approx(1e-3)
    assert lrn.decay_for(1000) == pytest.approx(5e-4)
    assert lrn.decay_for(2000) == pytest.approx(2.5e-4)
    assert lrn.decay_for(10**7) == pytest.approx(2e-4)  # the floor
    lrn.scheduler.step()  # a step keeps the decayed rate
    assert lrn.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    lrn.set_lr(5e-4)  # a new peak (a warm start's) decays alike
    assert lrn.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_without_a_halflife_the_rate_stays_constant() -> None:
    lrn = learner(lr_halflife=0)
    lrn.scheduler.step()
    assert lrn.decay_for(10**9) == pytest.approx(1e-3)


def test_by_default_the_rate_stays_at_its_peak_and_the_played_net_is_an_average() -> None:
    lrn = learner()  # the defaults chosen by games (README, Arms)
    lrn.scheduler.step()
    assert lrn.decay_for(10**7) == pytest.approx(1e-3)
    assert lrn.ema is not None


def test_a_lower_floor_turns_the_default_halflife_on() -> None:
    lrn = learner(lr_floor=0.25)
    lrn.scheduler.step()
    assert lrn.decay_for(60_000) == pytest.approx(5e-4)


def test_a_restarted_learner_has_the_rate_the_positions_say() -> None:
    first = learner(lr_halflife=500)
    first.scheduler.step()
    first.decay_for(700)
    again = learner(lr_halflife=500)
    again.load_state_dict(first.state_dict())
    assert again.decay_for(700) == pytest.approx(first.optimizer.param_groups[0]["lr"])


@pytest.mark.parametrize("kw,match", [({"lr_halflife": -1}, "lr_halflife"), ({"lr_floor": 0}, "lr_floor"),
                                      ({"lr_floor": 1.5}, "lr_floor")])
def test_bad_values_are_refused(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        LearnerConfig(**kw)
