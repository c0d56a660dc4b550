"""Does it learn? Train from random weights for a wall-clock budget, then play.

    python bench/learning.py                 # 20 minutes of training (the default)
    python bench/learning.py --minutes 5     # a quicker look

Runs the real lifecycle (self-play workers, learner, commits) on a fresh
local hub for ``--minutes``, then plays the final network against the
initial one and against a uniformly random mover, both sides at the same
fixed search budget, from book openings with colours swapped. Prints
games/hour, positions/hour and the scores with 95% intervals; the
acceptance bar is a score of at least 0.75 against the random mover with
the interval's low end above 0.5.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from l4demons.checkpoint import MODEL_FILE
from l4demons.elo import PlayerSpec
from l4demons.elo.match import play_match
from l4demons.elo.openings import load_openings
from l4demons.elo.rating import expected_score, pairwise_elo
from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE, TrainConfig, Trainer


def score_row(name: str, result) -> str:
    interval = pairwise_elo(result.wins, result.draws, result.losses)
    lo, hi = expected_score(interval.lo), expected_score(interval.hi)
    return (f"| {name:24} | {result.games:5} | {result.wins}/{result.draws}/{result.losses:<3} | {result.score:5.3f} "
            f"| {lo:5.3f}..{hi:5.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget (wall clock)")
    ap.add_argument("--games", type=int, default=40, help="self-play games per cycle")
    ap.add_argument("--steps", type=int, default=100, help="backprop steps per cycle")
    ap.add_argument("--net", default="small")
    ap.add_argument("--match-games", type=int, default=30, help="games against the random mover")
    ap.add_argument("--initial-games", type=int, default=16, help="games against the initial net")
    ap.add_argument("--max-plies", type=int, default=300, help="evaluation games longer than this are draws")
    ap.add_argument("--nodes", type=int, default=64, help="search nodes per move in evaluation games")
    ap.add_argument("--hub", default=None, help="hub directory (default: a fresh temporary one)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    hub_dir = Path(args.hub or tempfile.mkdtemp(prefix="l4d-learning-")) / "hub"
    hub = LocalHub(hub_dir)
    cfg = TrainConfig(hours=args.minutes / 60, games=args.games, steps=args.steps, net=args.net, elo_seconds=0)
    t0 = time.time()
    state = Trainer(cfg, hub).run()
    train_s = time.time() - t0

    initial = next(c for c in hub.history() if c.message == INITIAL_MESSAGE)
    work = Path(tempfile.mkdtemp(prefix="l4d-learning-eval-"))
    final_path, initial_path = work / "final.pt", work / "initial.pt"
    final_path.write_bytes(hub.download(MODEL_FILE).read_bytes())
    initial_path.write_bytes(hub.download(MODEL_FILE, initial.id).read_bytes())
    final = PlayerSpec.net(final_path, nodes=args.nodes)
    openings = load_openings(count=max(1, args.match_games // 2), seed=1)
    logging.info("[ELO] evaluating: %d games against the random mover, %d against the initial net",
                 args.match_games, args.initial_games)
    vs_random = play_match(final, PlayerSpec.random(), openings, args.match_games, max_plies=args.max_plies, seed=1,
                           event="learning bench")
    vs_initial = play_match(final, PlayerSpec.net(initial_path, nodes=args.nodes), openings, args.initial_games,
                            max_plies=args.max_plies, seed=2, event="learning bench")

    hours = train_s / 3600
    print()
    print(f"training: {train_s / 60:.1f} min, {state.cycle} cycles, {state.games} games, {state.positions} positions, "
          f"{state.learner['step']} steps, network {args.net}")
    print(f"| games/hour | positions/hour |\n|---:|---:|\n| {state.games / hours:.0f} | {state.positions / hours:.0f} |")
    print()
    print(f"| final net ({args.nodes} nodes) vs | games | W/D/L     | score | 95% interval |")
    print("|---|---:|---|---:|---|")
    print(score_row("uniformly random mover", vs_random))
    print(score_row(f"initial net ({args.nodes} nodes)", vs_initial))
    interval = pairwise_elo(vs_random.wins, vs_random.draws, vs_random.losses)
    ok = vs_random.score >= 0.75 and expected_score(interval.lo) > 0.5
    print(f"\nacceptance (>= 0.75 vs random, interval above 0.5): {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
