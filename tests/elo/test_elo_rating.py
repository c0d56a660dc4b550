"""The arithmetic: expected score, ML fits, intervals, LOS, SPRT."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from l4demons.elo.rating import (
    PairResult,
    elo_diff,
    expected_score,
    fit_one,
    fit_ratings,
    los,
    pairwise_elo,
    _mle_with_mean,
    sprt,
    sprt_llr,
)


def synthetic_games(rng: np.random.Generator, diff: float, games: int, draw_rate: float = 0.3) -> tuple[int, int, int]:
    """(wins, draws, losses) drawn so the expected score is expected_score(diff)."""
    s = expected_score(diff)
    draw = min(draw_rate, 2 * min(s, 1 - s))
    win = s - draw / 2
    w, d, lost = rng.multinomial(games, [win, draw, 1 - win - draw])
    return int(w), int(d), int(lost)


def test_expected_score_and_its_inverse() -> None:
    assert expected_score(0) == 0.5
    assert expected_score(400) == pytest.approx(10 / 11)
    assert expected_score(-200) == pytest.approx(1 - expected_score(200))
    for diff in (-700, -120, 0, 35, 600):
        assert elo_diff(expected_score(diff)) == pytest.approx(diff)
    assert elo_diff(1.0) == math.inf and elo_diff(0.0) == -math.inf


def test_fit_one_recovers_exact_score() -> None:
    # 76% against a 1000 player is 1000 + 400*log10(0.76/0.24).
    fit = fit_one([(1000, 76, 0, 24)])
    assert fit.elo == pytest.approx(1000 + 400 * math.log10(76 / 24), abs=0.01)
    assert fit.lo < fit.elo < fit.hi
    assert fit.games == 100


@pytest.mark.parametrize("true_diff", [-300, 0, 150, 450])
def test_synthetic_player_known_difference_within_interval(true_diff: float) -> None:
    rng = np.random.default_rng(int(true_diff) + 1000)
    w, d, lost = synthetic_games(rng, true_diff, 800)
    fit = fit_one([(1500, w, d, lost)])
    assert fit.lo <= 1500 + true_diff <= fit.hi
    assert fit.hi - fit.lo < 120  # 800 games pin it down
    pair = pairwise_elo(w, d, lost)
    assert pair.lo <= true_diff <= pair.hi


def test_multi_player_fit_recovers_a_chain() -> None:
    rng = np.random.default_rng(7)
    truth = {"a": 0.0, "b": 250.0, "c": 600.0, "d": 900.0}
    pairs = [PairResult(x, y, *synthetic_games(rng, truth[x] - truth[y], 400))
             for x, y in (("b", "a"), ("c", "b"), ("d", "c"), ("c", "a"), ("d", "b"))]
    fit = fit_ratings(pairs, {"d": 900.0})
    assert fit["d"].elo == 900.0 and fit["d"].lo == fit["d"].hi == 900.0
    for name in "abc":
        assert fit[name].lo <= truth[name] <= fit[name].hi, (name, fit[name])
    assert fit["a"].error > fit["c"].error  # further from the fixed anchor, less certain


def test_perfect_scores_stay_finite() -> None:
    # All wins: one virtual draw -> score 10.5/11.
    fit = fit_one([(1000, 10, 0, 0)])
    assert fit.elo == pytest.approx(1000 + 400 * math.log10(21), abs=0.01)
    assert math.isfinite(fit.lo) and math.isfinite(fit.hi)
    assert fit_one([(1000, 0, 0, 10)]).elo == pytest.approx(1000 - 400 * math.log10(21), abs=0.01)
    assert math.isfinite(pairwise_elo(10, 0, 0).elo)
    assert pairwise_elo(0, 0, 0).games == 0
    assert math.isnan(fit_one([]).elo)


def test_unlinked_player_is_an_error() -> None:
    with pytest.raises(ValueError, match="no games link"):
        fit_ratings([PairResult("x", "y", 3, 1, 2)], {"z": 0.0})
    with pytest.raises(ValueError, match="fix the rating"):
        fit_ratings([PairResult("x", "y", 3, 1, 2)], {})


def test_los() -> None:
    assert los(10, 10) == 0.5
    assert los(0, 0) == 0.5
    assert los(30, 10) > 0.99
    assert los(10, 30) < 0.01
    assert los(12, 10) < los(14, 10) < los(16, 10)


def _sequential(diff: float, seed: int, elo0: float, elo1: float, limit: int = 20000) -> str | None:
    rng = np.random.default_rng(seed)
    tally = [0, 0, 0]
    for _ in range(limit):
        tally[int(np.argmax(rng.multinomial(1, _probs(diff))))] += 1
        verdict = sprt(*tally, elo0, elo1, 0.05, 0.05)
        if verdict is not None:
            return verdict
    return None


def _probs(diff: float) -> list[float]:
    s = expected_score(diff)
    draw = min(0.4, 2 * min(s, 1 - s))
    return [s - draw / 2, draw, 1 - s - draw / 2]


def test_sprt_stops_with_h1_for_a_clearly_stronger_player() -> None:
    assert _sequential(150, seed=1, elo0=0, elo1=50) == "H1"
    assert sprt(60, 20, 5, 0, 50) == "H1"


def test_sprt_does_not_say_h1_for_an_equal_player() -> None:
    for seed in range(5):
        assert _sequential(0, seed=seed, elo0=0, elo1=30) != "H1"
    assert sprt(20, 40, 20, 0, 30) is None or sprt(20, 40, 20, 0, 30) == "H0"


def test_sprt_says_h0_for_a_weaker_player() -> None:
    assert _sequential(-100, seed=3, elo0=0, elo1=30) == "H0"


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500), st.floats(-600, 600))
def test_the_sprt_likelihoods_keep_the_mean_and_beat_every_other_with_it(w: int, d: int, lost: int, elo: float) -> None:
    counts = np.array([max(float(c), 1e-3) for c in (lost, d, w)])
    freqs = counts / counts.sum()
    mean = expected_score(elo)
    p = _mle_with_mean(freqs, mean)
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert p @ [0.0, 0.5, 1.0] == pytest.approx(mean, abs=1e-9)
    # Any other loss/draw/win split with the same mean fits the counts no better: move along the
    # constraint (one more draw, half a loss and half a win less) either way.
    for step in (1e-4, -1e-4):
        other = p + step * np.array([-0.5, 1.0, -0.5])
        if (other > 0).all():
            assert freqs @ np.log(other) <= freqs @ np.log(p) + 1e-12


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_sprt_and_intervals_never_divide_by_zero(w: int, d: int, lost: int) -> None:
    assert math.isfinite(sprt_llr(w, d, lost, 0, 10))
    assert sprt(w, d, lost, 0, 10) in ("H0", "H1", None)
    pair = pairwise_elo(w, d, lost)
    if w + d + lost:
        assert math.isfinite(pair.elo)
        assert pair.lo <= pair.elo <= pair.hi
