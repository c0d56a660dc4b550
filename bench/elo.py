"""Benchmark of the per-cycle Elo estimate, and the rating ladder it stands on.

Prints:

1. the per-cycle estimate (``quick_estimate``) of a candidate, by default
   the material grabber standing in for the net: seconds taken, games
   played, Elo with its 95% interval, with the default budget
   (``--budget`` seconds, ``--max-games`` games) and again with the game
   cap lifted so that the time budget is what stops it;
2. the ladder random < material < Stockfish UCI_Elo 1350: the calibrated
   ratings from the anchors file with their intervals, and a fresh
   estimate of each of the three against the other anchors.

    python bench/elo.py                      # material grabber, 180 s budget
    python bench/elo.py --net model.pt --nodes 64 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

try:
    import l4demons  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from l4demons.elo import AnchorSet, PlayerSpec, format_table, load_anchors, quick_estimate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=180.0, help="time budget of the estimate, seconds")
    parser.add_argument("--max-games", type=int, default=100, help="game budget of the estimate")
    parser.add_argument("--time-bound", type=float, default=20.0,
                        help="budget of the second run, whose game cap is lifted (0: skip)")
    parser.add_argument("--workers", type=int, default=None, help="parallel games (default: one per core)")
    parser.add_argument("--net", help="measure this weights file instead of the material grabber")
    parser.add_argument("--nodes", type=int, default=64, help="search nodes per move for --net")
    parser.add_argument("--prior", type=float, default=None, help="prior Elo (default: start at the weakest anchor)")
    parser.add_argument("--no-ladder", action="store_true", help="skip part 2")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    anchors = load_anchors()
    candidate = PlayerSpec.net(args.net, nodes=args.nodes) if args.net else PlayerSpec.material()
    print(f"== per-cycle estimate of {candidate.name} (budget {args.budget:g}s / {args.max_games} games, "
          f"workers {args.workers or 'all cores'})")
    runs = [(args.budget, args.max_games)]
    if args.time_bound > 0:
        runs.append((args.time_bound, 1_000_000))
    print(f"{'budget':>8} {'max games':>9} {'seconds':>8} {'games':>6}  Elo (95%)")
    for budget, max_games in runs:
        started = time.monotonic()
        est = quick_estimate(candidate, prior_elo=args.prior, time_budget_s=budget, max_games=max_games,
                             workers=args.workers, anchors=anchors)
        took = time.monotonic() - started
        print(f"{budget:>7g}s {max_games:>9} {took:>8.1f} {est.games:>6}  {est.elo:.0f} ± {est.error:.0f} "
              f"({est.lo:.0f}..{est.hi:.0f})  within budget: {'yes' if took <= budget else 'NO'}")
    print(format_table(est))

    if not args.no_ladder:
        print("\n== ladder: calibrated anchors (anchors.json)")
        cal = anchors.provenance
        print(f"   measured {cal.get('date', '?')}, {cal.get('games', '?')} games, {cal.get('stockfish', '?')}, "
              f"fixed {cal.get('fixed', '?')}")
        for name in ("random", "material", "sf-elo1350"):
            a = anchors[name]
            print(f"   {name:12} {a.elo:7.0f}  95% [{a.lo:.0f}, {a.hi:.0f}]  ({a.source})")
        print("\n== ladder: fresh estimate of each against the other anchors")
        for name in ("random", "material", "sf-elo1350"):
            others = AnchorSet(tuple(a for a in anchors.anchors if a.name != name), anchors.provenance)
            est = quick_estimate(anchors[name].spec, prior_elo=anchors[name].elo,
                                 time_budget_s=args.budget, max_games=40, workers=args.workers, anchors=others)
            print(f"   {name:12} {est.elo:7.0f}  95% [{est.lo:.0f}, {est.hi:.0f}]  {est.games} games, "
                  f"{est.seconds:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
