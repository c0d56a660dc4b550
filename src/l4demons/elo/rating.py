"""Elo from game results: logistic model, maximum likelihood, intervals, SPRT.

Conventions, once for the whole module:

* Logistic Elo: a player ``d`` points stronger expects ``1 / (1 + 10**(-d/400))``.
* Draws count as half a win and half a loss (Ordo's convention, BayesElo
  without its draw-Elo parameter).
* Intervals are 95% (``Z95 = 1.96`` standard errors). For one pairing the
  standard error comes from the trinomial (win/draw/loss) variance of the
  score; for a fit over several opponents from the Fisher information.
* A pairing whose score is 0% or 100% makes the likelihood unbounded (the
  best rating is infinitely far). Such a pairing gets one virtual draw
  added, a prior that says "at least this close"; with 20 straight wins
  this puts the player 400*log10(41) = 645 points above the opponent.
  Nothing here divides by zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

Z95 = 1.959963984540054
"""Standard normal quantile for a two-sided 95% interval."""
K = math.log(10) / 400
"""d(logit of expected score) / d(Elo)."""


def expected_score(diff: float) -> float:
    """Expected score of a player ``diff`` Elo above the opponent."""
    return 1.0 / (1.0 + 10.0 ** (-diff / 400.0))


def elo_diff(score: float) -> float:
    """Elo difference that gives ``score``; +-inf at 1 and 0."""
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return -400.0 * math.log10(1.0 / score - 1.0)


@dataclasses.dataclass(frozen=True)
class EloInterval:
    """An Elo value with its 95% interval and the games behind it."""

    elo: float
    lo: float
    hi: float
    games: int = 0

    @property
    def error(self) -> float:
        """Half-width of the interval (the larger side when asymmetric)."""
        return max(self.hi - self.elo, self.elo - self.lo)

    def __str__(self) -> str:
        return f"{self.elo:.0f} ± {self.error:.0f} ({self.games} games)"


@dataclasses.dataclass(frozen=True)
class PairResult:
    """Results of ``a`` against ``b``, from ``a``'s side."""

    a: str
    b: str
    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses


def _with_prior(wins: float, draws: float, losses: float) -> tuple[float, float, float]:
    """Add one virtual draw when the score is 0% or 100% (see module doc)."""
    if wins + draws + losses > 0 and (wins + draws / 2 == 0 or losses + draws / 2 == 0):
        return wins, draws + 1, losses
    return wins, draws, losses


def pairwise_elo(wins: int, draws: int, losses: int) -> EloInterval:
    """Elo difference of one pairing with a 95% interval from the trinomial variance."""
    n_real = wins + draws + losses
    if n_real == 0:
        return EloInterval(0.0, -math.inf, math.inf, 0)
    w, d, lost = _with_prior(wins, draws, losses)
    n = w + d + lost
    s = (w + d / 2) / n
    var = (w * (1 - s) ** 2 + d * (0.5 - s) ** 2 + lost * s**2) / n
    se = math.sqrt(var / n)
    lo_s, hi_s = s - Z95 * se, s + Z95 * se
    return EloInterval(elo_diff(s), elo_diff(lo_s), elo_diff(hi_s), n_real)


def los(wins: int, losses: int) -> float:
    """Likelihood of superiority: P(A stronger than B) given decisive games (draws carry none)."""
    if wins + losses == 0:
        return 0.5
    return 0.5 * (1.0 + math.erf((wins - losses) / math.sqrt(2.0 * (wins + losses))))


def fit_ratings(results: Iterable[PairResult], fixed: Mapping[str, float]) -> dict[str, EloInterval]:
    """Maximum-likelihood ratings of every player not in ``fixed``.

    Newton's method on the log-likelihood (concave, so it converges from
    zero; steps are halved until the likelihood rises). The standard
    errors are the square roots of the diagonal of the inverse Fisher
    information; the intervals are +-1.96 of them. Fixed players get a
    zero-width interval.

    :raises ValueError: no fixed player, or a free player not connected to
        a fixed one through games.
    """
    pairs = [p for p in results if p.games > 0]
    if not fixed:
        raise ValueError("fix the rating of at least one player")
    names = sorted({p.a for p in pairs} | {p.b for p in pairs} | set(fixed))
    free = [n for n in names if n not in fixed]
    _check_connected(pairs, free, fixed)
    index = {n: i for i, n in enumerate(free)}
    a_idx = np.array([index.get(p.a, -1) for p in pairs], dtype=np.int64)
    b_idx = np.array([index.get(p.b, -1) for p in pairs], dtype=np.int64)
    a_fix = np.array([fixed.get(p.a, 0.0) for p in pairs], dtype=np.float64)
    b_fix = np.array([fixed.get(p.b, 0.0) for p in pairs], dtype=np.float64)
    counts = np.array([_with_prior(p.wins, p.draws, p.losses) for p in pairs], dtype=np.float64).reshape(-1, 3)
    n = counts.sum(axis=1)
    s = counts[:, 0] + counts[:, 1] / 2
    games = {name: 0 for name in names}
    for p in pairs:
        games[p.a] += p.games
        games[p.b] += p.games

    def rating_of(x: np.ndarray, idx: np.ndarray, fix: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, x[np.maximum(idx, 0)] if len(x) else 0.0, fix)

    def loglik(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        diff = rating_of(x, a_idx, a_fix) - rating_of(x, b_idx, b_fix)
        p = 1.0 / (1.0 + np.power(10.0, -diff / 400.0))
        ll = float(np.sum(s * np.log(p) + (n - s) * np.log1p(-p)))
        grad, hess = np.zeros(len(free)), np.zeros((len(free), len(free)))
        g, h = K * (s - n * p), K * K * n * p * (1 - p)
        for sign, idx in ((1.0, a_idx), (-1.0, b_idx)):
            mask = idx >= 0
            np.add.at(grad, idx[mask], sign * g[mask])
            np.add.at(hess, (idx[mask], idx[mask]), h[mask])
        both = (a_idx >= 0) & (b_idx >= 0)
        np.add.at(hess, (a_idx[both], b_idx[both]), -h[both])
        np.add.at(hess, (b_idx[both], a_idx[both]), -h[both])
        return ll, grad, hess  # hess is the Fisher information (minus the Hessian)

    x = np.full(len(free), float(np.mean(list(fixed.values()))))
    ll, grad, info = loglik(x)
    for _ in range(200):
        if not free:
            break
        step = np.linalg.solve(info, grad)
        t = 1.0
        ll_new, grad_new, info_new = loglik(x + step)
        while ll_new < ll - 1e-12 and t > 1e-6:
            t /= 2
            ll_new, grad_new, info_new = loglik(x + t * step)
        x, ll, grad, info = x + t * step, ll_new, grad_new, info_new
        if np.max(np.abs(t * step)) < 1e-6:
            break
    cov = np.linalg.inv(info) if free else np.zeros((0, 0))
    out = {name: EloInterval(elo, elo, elo, games[name]) for name, elo in fixed.items()}
    for name, i in index.items():
        se = math.sqrt(max(cov[i, i], 0.0))
        out[name] = EloInterval(float(x[i]), float(x[i] - Z95 * se), float(x[i] + Z95 * se), games[name])
    return out


def _check_connected(pairs: Sequence[PairResult], free: Sequence[str], fixed: Mapping[str, float]) -> None:
    neighbours: dict[str, set[str]] = {}
    for p in pairs:
        neighbours.setdefault(p.a, set()).add(p.b)
        neighbours.setdefault(p.b, set()).add(p.a)
    reached, todo = set(fixed), list(fixed)
    while todo:
        for other in neighbours.get(todo.pop(), ()):
            if other not in reached:
                reached.add(other)
                todo.append(other)
    lost = [name for name in free if name not in reached]
    if lost:
        raise ValueError(f"no games link {lost} to a player of known rating; play them against an anchor")


def fit_one(results: Iterable[tuple[float, int, int, int]]) -> EloInterval:
    """Rating of one player from ``(opponent_elo, wins, draws, losses)`` rows."""
    pairs: list[PairResult] = []
    fixed: dict[str, float] = {}
    for i, (elo, w, d, lost) in enumerate(results):
        fixed[f"anchor{i}"] = float(elo)
        pairs.append(PairResult("player", f"anchor{i}", w, d, lost))
    if sum(p.games for p in pairs) == 0:
        return EloInterval(math.nan, -math.inf, math.inf, 0)
    return fit_ratings(pairs, fixed)["player"]


def sprt_llr(wins: int, draws: int, losses: int, elo0: float, elo1: float) -> float:
    """Log-likelihood ratio of H1 (Elo = elo1) over H0 (Elo = elo0), as fishtest computes it.

    The generalized SPRT on the trinomial: under each hypothesis the
    win/draw/loss probabilities are the maximum-likelihood ones whose
    expected score is ``expected_score(elo)``, and the LLR compares the
    observed counts under the two. Unlike the normal approximation it
    stays sane after a handful of games (five straight wins are worth
    ``5 log(s1/s0)``, not a verdict). Counts are regularised to at least
    1e-3 each, as fishtest does, so no outcome has zero probability.
    """
    counts = np.array([max(float(c), 1e-3) for c in (losses, draws, wins)])
    freqs = counts / counts.sum()
    p0 = _mle_with_mean(freqs, expected_score(elo0))
    p1 = _mle_with_mean(freqs, expected_score(elo1))
    return float(np.sum(counts * np.log(p1 / p0)))


def _mle_with_mean(freqs: np.ndarray, mean: float) -> np.ndarray:
    """Loss/draw/win probabilities maximising sum(f log p) subject to expected score ``mean``.

    Lagrange: ``p_i = f_i / (1 + lam (a_i - mean))`` with ``lam`` the root
    of ``sum f_i (a_i - mean) / (1 + lam (a_i - mean))``, which decreases in
    ``lam`` on the interval where every denominator is positive: bisection
    to the last bit, on Python floats (three terms: numpy's per-call cost
    made this 20 times slower, and the gate and its simulator call it often).
    """
    shifted = (0.0 - mean, 0.5 - mean, 1.0 - mean)
    f = [float(x) for x in freqs]
    lo, hi = -1.0 / max(shifted), 1.0 / -min(shifted)
    lam = (lo + hi) / 2
    while lo < lam < hi:
        if sum(fi * si / (1 + lam * si) for fi, si in zip(f, shifted)) > 0:
            lo = lam
        else:
            hi = lam
        lam = (lo + hi) / 2
    p = np.array([fi / (1 + lam * si) for fi, si in zip(f, shifted)])
    return p / p.sum()


def sprt_bounds(alpha: float = 0.05, beta: float = 0.05) -> tuple[float, float]:
    """(lower, upper) LLR bounds: accept H0 below, H1 above."""
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


def sprt(wins: int, draws: int, losses: int, elo0: float = 0.0, elo1: float = 10.0,
         alpha: float = 0.05, beta: float = 0.05) -> Literal["H0", "H1"] | None:
    """Sequential probability ratio test: ``"H1"`` (stronger by elo1), ``"H0"``, or None: play on."""
    if wins + draws + losses == 0:
        return None
    llr = sprt_llr(wins, draws, losses, elo0, elo1)
    lower, upper = sprt_bounds(alpha, beta)
    if llr >= upper:
        return "H1"
    if llr <= lower:
        return "H0"
    return None
