"""The best-model gate's rules, simulated: which one keeps ``model_best.pt`` closest to the newest net?

    python bench/gate_sim.py
    python bench/gate_sim.py --tau 60 --lean-llr 0.5   # a slower curve, a lower threshold

A model of a training run, not games: the gate (:mod:`l4demons.lifecycle.gate`)
is too slow to compare by whole hours (two hours per rule, one sample each),
so its rules are compared here on a run whose nets follow the curve the
hours print. The newest net of cycle ``c`` is rated
``gain * (1 - exp(-c / tau))`` plus a net-to-net spread (one cycle moves a
young net by 50-160 Elo, README Arms); the gate plays ``--games-per-cycle``
games in each cycle's time (20% of 2 cores here: about 20 games in the
9 cycles between two ratings), each a win, draw or loss drawn from the two
nets' Elo gap at ``--draw-rate``, and the real SPRT decides
(:func:`l4demons.elo.rating.sprt`, the gate's ``ELO0``/``ELO1``/``ALPHA``/``BETA``).

Rules compared, each on the same runs (the same nets and the same dice):

- ``yield``: an undecided gate gives way after ``SUPERSEDE_GAMES`` games to a
  net ``SUPERSEDE_CYCLES`` cycles newer, whatever its tally says;
- ``lean``: it gives way only while its LLR is under ``--lean-llr`` (a gate on
  its way to a promotion plays on to its verdict or the cap);
- ``finish``: it never gives way (verdict or the game cap only).

One table: per rule the promotions in a run, the share of promotions of a
net no stronger than the best it replaced, the best's mean deficit to the
newest net over the run's last third and at its end, with its spread over runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from l4demons.elo.rating import expected_score  # noqa: E402
from l4demons.lifecycle.gate import ALPHA, BETA, ELO0, ELO1, SUPERSEDE_LLR, Gate  # noqa: E402


def simulate(rule: str, elo: np.ndarray, dice: np.random.Generator, games_per_cycle: float, draw_rate: float,
             max_games: int, lean_llr: float) -> tuple[np.ndarray, int, int]:
    """One run under ``rule``: the best net's Elo at every cycle, the promotions, and those of a no-stronger net.

    Each test is a real :class:`~l4demons.lifecycle.gate.Gate` (its tally, verdict and cap); only its games are
    drawn here, and the rule picks the LLR from which :meth:`~l4demons.lifecycle.gate.Gate.yields_to` plays on."""
    plays_on_from = {"yield": math.inf, "lean": lean_llr, "finish": -math.inf}[rule]
    best, best_elo = -1, 0.0
    gate = None
    credit = 0.0
    promotions = bad = 0
    best_trace = np.empty(len(elo))
    for c in range(len(elo)):
        if gate is not None and gate.yields_to(c, plays_on_from):
            gate = None
        if gate is None and c > best:
            gate = Gate(c, Path(f"cycle-{c}"), Path("best"), None, nodes=0, max_games=max_games)
        credit += games_per_cycle
        while gate is not None and credit >= 1.0:
            credit -= 1.0
            s = expected_score(elo[gate.cycle] - best_elo)
            d = min(draw_rate, 2 * min(s, 1 - s))
            u = dice.random()
            if u < s - d / 2:
                gate.wins += 1
            elif u < s + d / 2:
                gate.draws += 1
            else:
                gate.losses += 1
            if gate.done:
                if gate.promoted:
                    promotions += 1
                    bad += elo[gate.cycle] <= best_elo
                    best, best_elo = gate.cycle, elo[gate.cycle]
                gate = None
        best_trace[c] = best_elo
    return best_trace, promotions, bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=100, help="cycles in a run (an hour here: 90-100)")
    ap.add_argument("--games-per-cycle", type=float, default=2.2, help="gate games in one cycle's time")
    ap.add_argument("--gain", type=float, default=550.0, help="Elo the newest net gains over the run's curve")
    ap.add_argument("--tau", type=float, default=25.0, help="cycles over which the curve rises (1 - 1/e of it)")
    ap.add_argument("--spread", type=float, default=40.0, help="standard deviation of a net around the curve, Elo")
    ap.add_argument("--draw-rate", type=float, default=0.35)
    ap.add_argument("--max-games", type=int, default=100, help="the gate's game cap")
    ap.add_argument("--lean-llr", type=float, default=None, help="the lean rule's LLR (default: the gate's own)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    lean = SUPERSEDE_LLR if args.lean_llr is None else args.lean_llr

    rules = ("yield", "lean", "finish")
    deficits = {r: [] for r in rules}
    ends = {r: [] for r in rules}
    promos = {r: [] for r in rules}
    bads = {r: [] for r in rules}
    tail = slice(2 * args.cycles // 3, None)
    for run in range(args.runs):
        nets = np.random.default_rng([args.seed, run])
        newest = args.gain * (1 - np.exp(-np.arange(args.cycles) / args.tau))  # what a cycle's net is worth on average
        elo = newest + nets.normal(0, args.spread, args.cycles)
        for rule in rules:
            trace, p, b = simulate(rule, elo, np.random.default_rng([args.seed, run, 1]), args.games_per_cycle,
                                   args.draw_rate, args.max_games, lean)
            deficits[rule].append(float(np.mean(newest[tail] - trace[tail])))
            ends[rule].append(float(newest[-1] - trace[-1]))
            promos[rule].append(p)
            bads[rule].append(b)

    print(f"gate_sim: {args.runs} runs of {args.cycles} cycles, {args.games_per_cycle} gate games a cycle, "
          f"curve {args.gain:.0f} Elo over tau {args.tau:.0f} cycles, nets spread {args.spread:.0f}, "
          f"SPRT({ELO0:.0f}, {ELO1:.0f}) alpha {ALPHA} beta {BETA}, cap {args.max_games}; lean: LLR >= {lean:.2f} plays on")
    print()
    print("| rule | promotions a run | of them no stronger | best behind the curve, last third (Elo) "
          "| at the end (mean, 10th..90th pct) |")
    print("|---|---:|---:|---:|---|")
    for rule in rules:
        end = np.array(ends[rule])
        p = float(np.mean(promos[rule]))
        share = sum(bads[rule]) / max(1, sum(promos[rule]))
        print(f"| {rule} | {p:.1f} | {share:.2f} | {np.mean(deficits[rule]):.0f} "
              f"| {end.mean():.0f} ({np.percentile(end, 10):.0f}..{np.percentile(end, 90):.0f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
