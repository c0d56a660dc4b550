"""What a cycle does: steps from the sample-reuse target, a window that grows, self-play that lasts a span of time."""

from __future__ import annotations

import pytest

from l4demons.lifecycle.budgets import WindowConfig, another_round, steps_for_cycle, window_size
from l4demons.lifecycle.config import TrainConfig
from l4demons.lifecycle.measure import decayed_pool


def test_steps_bring_the_samples_up_to_the_reuse_target():
    # 2,500 new training positions at reuse 4 owe 10,000 samples: 40 steps of 256 (39.06, rounded up).
    assert steps_for_cycle(2_500, 0, 4.0, 256) == 40
    # While a warm start's teacher fills half of each batch, 128 self-play rows a step: twice the steps.
    assert steps_for_cycle(2_500, 0, 4.0, 256 * (1 - 0.5)) == 79
    # The samples drawn so far count: a cycle after a big one owes only the difference.
    assert steps_for_cycle(5_000, 40 * 256, 4.0, 256) == 39
    # Ahead of the target (a merge brought fewer positions than we trained on): no step.
    assert steps_for_cycle(1_000, 10_000, 4.0, 256) == 0
    # Over a run the reuse stays at the target whatever the cycle sizes.
    positions = samples = 0
    for new in (700, 2_300, 50, 4_100, 1_234):
        positions += new
        samples += steps_for_cycle(positions, samples, 4.0, 256) * 256
    assert 4.0 <= samples / positions < 4.0 + 256 / positions


def test_ddp_ranks_share_one_reuse_target():
    # Four ranks of batch 256 draw 1,024 a step: a quarter of the steps, the same samples over the job.
    single = steps_for_cycle(10_000, 0, 4.0, 256, world_size=1)
    four = steps_for_cycle(10_000, 0, 4.0, 256, world_size=4)
    assert four == pytest.approx(single / 4, abs=1)
    assert four * 256 * 4 >= 40_000


def test_window_grows_sublinearly_with_the_data_seen():
    cfg = WindowConfig(min_positions=25_000, alpha=0.75, beta=0.4, max_positions=500_000)
    assert window_size(0, cfg) == window_size(25_000, cfg) == 25_000
    sizes = [window_size(n, cfg) for n in (50_000, 100_000, 400_000, 1_600_000)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    assert sizes[-1] < 1_600_000 / 4  # sub-linear: old games leave it
    # KataGo's formula: c * (1 + beta * ((n / c) ** alpha - 1) / alpha)
    assert window_size(100_000, cfg) == int(25_000 * (1 + 0.4 * (4 ** 0.75 - 1) / 0.75))
    assert window_size(10**9, cfg) == 500_000


def test_self_play_lasts_a_span_of_time_in_rounds():
    # A GPU's 2-second rounds: rounds until 10 seconds have passed.
    elapsed, rounds = 0.0, 0
    while another_round(elapsed, 2.0, 10.0) or rounds == 0:
        elapsed, rounds = elapsed + 2.0, rounds + 1
    assert rounds == 5 and elapsed == 10.0
    # A CPU's 9-second round is one round: a second would end 8 seconds past the span.
    assert not another_round(9.0, 9.0, 10.0)
    # A round that ends at most a quarter past the span still starts; 0 means one round.
    assert another_round(8.0, 4.5, 10.0) and not another_round(8.0, 4.6, 10.0)
    assert not another_round(0.5, 0.1, 0.0)
    cfg = TrainConfig()
    assert cfg.elo_share == 0.2 and cfg.measures
    assert not TrainConfig(elo_seconds=0).measures


def test_pooled_counts_decay_and_fade():
    pool = decayed_pool({}, {"random": [2, 0, 0]}, 0.5)
    pool = decayed_pool(pool, {"material": [1, 1, 0]}, 0.5)
    assert pool == {"random": [1.0, 0.0, 0.0], "material": [1.0, 1.0, 0.0]}
    for _ in range(12):
        pool = decayed_pool(pool, {}, 0.5)
    assert pool == {}  # old games fade out entirely


@pytest.mark.parametrize("flags, problem", [
    (dict(sample_reuse=0), "--sample-reuse"), (dict(cycle_seconds=-1), "--cycle-seconds"), (dict(elo_share=1.0), "--elo-share"),
    (dict(elo_halflife=0), "--elo-halflife"), (dict(steps=-1), "--steps"),
])
def test_bad_budgets_are_refused_with_the_flag_named(flags, problem):
    with pytest.raises(ValueError, match=problem):
        TrainConfig(**flags)
