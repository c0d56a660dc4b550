"""Strength per hour: train from an empty hub with default flags, then measure by games.

    python bench/learning.py --minutes 60            # the issue's proof (about 1 h 40 min in all)
    python bench/learning.py --minutes 10 --anchor-games 40 --initial-games 20   # a quicker look

1. ``l4demons train --hub H --hours M/60`` in a child process, exactly as a
   user runs it (default flags, the per-cycle Elo included); extra flags
   after ``--`` are passed through.
2. The final ``model_best.pt`` (what every front door plays) against the
   calibrated anchors nearest it (``l4demons elo``'s full measurement, at
   least 200 games by default), against the one-ply material grabber, and
   against the run's own initial random weights; all at ``--tc`` (default
   0.1 s a move, as through the UCI door), book openings with colours
   swapped. Scores carry 95% intervals (trinomial, from the Elo interval).
3. ``l4demons report`` draws the per-cycle Elo curve to ``--png``.
4. The probes (:mod:`l4demons.probes`) of the final and the initial net: the
   value of a piece up against the same piece down, the policy's mass on a
   free capture, and the share of held-out mate-in-1 and mate-in-2 puzzles
   solved at ``--mate-nodes`` nodes.

Prints the tables that the README carries. With ``--skip-training --newest``
the hub's newest played net (``model.pt``, or its averaged weights) is
measured in place of ``model_best.pt``, and ``--vs-best N`` plays it N games
against ``model_best.pt``: what the gate left out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from l4demons.checkpoint import BEST_FILE, METRICS_FILE, MODEL_FILE, read_metrics
from l4demons.elo import PlayerSpec, apply_tc, format_table, full_measurement
from l4demons.elo.match import play_match
from l4demons.elo.openings import load_openings
from l4demons.elo.rating import expected_score, pairwise_elo
from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE
from l4demons.network import load_network
from l4demons.probes import mate_probe, probe


SCORE_HEADER = "| games | W/D/L | score | 95% interval | net's nodes a move |\n|---:|---|---:|---|---:|"
"""The columns of :func:`score_row` after the first (whose header the caller names)."""


def score_row(name: str, result) -> str:
    """A match's row under :data:`SCORE_HEADER`: the score from player A's side, and A's mean search per move
    (at a time per move, what the machine gave it: the first suspect when a score moves between runs)."""
    interval = pairwise_elo(result.wins, result.draws, result.losses)
    lo, hi = expected_score(interval.lo), expected_score(interval.hi)
    return (f"| {name} | {result.games} | {result.wins}/{result.draws}/{result.losses} | {result.score:.3f} "
            f"| {lo:.3f}..{hi:.3f} | {result.thinking('a').nodes_per_move:.0f} |")


def score_table(title: str, rows) -> str:
    """``(name, match result)`` rows under a header whose first column is ``title``; results that are None or
    have no games are left out."""
    first, rule = SCORE_HEADER.split("\n")
    lines = [f"| {title} {first}", f"|---{rule}"]
    return "\n".join(lines + [score_row(name, r) for name, r in rows if r is not None and r.games])


def best_cycle(rows: list[dict]) -> int | None:
    """The cycle whose net is ``model_best.pt`` now: a promotion's row names the tested net's cycle."""
    row = next((r for r in reversed(rows) if r.get("best")), None)
    return None if row is None else row.get("best_cycle") or row["cycle"]


def run_cli(args: list[str], log_path: Path) -> float:
    """``l4demons ARGS`` in a child process as a user runs it, its output to ``log_path``; returns its wall time."""
    cmd = [sys.executable, "-m", "l4demons", *args]
    logging.info("[BENCH] %s (log: %s)", " ".join(cmd[2:]), log_path)
    t0 = time.time()
    with open(log_path, "w") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return time.time() - t0


def train(hub_dir: Path, minutes: float, extra: list[str], log_path: Path) -> float:
    """Run ``l4demons train`` as a user would; returns its wall time in seconds."""
    return run_cli(["train", "--hub", str(hub_dir), "--hours", str(minutes / 60), *extra], log_path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="training budget (wall clock)")
    ap.add_argument("--anchor-games", type=int, default=200, help="games against the calibrated anchors")
    ap.add_argument("--material-games", type=int, default=100, help="games against the material grabber")
    ap.add_argument("--initial-games", type=int, default=100, help="games against the initial net")
    ap.add_argument("--tc", default="time=0.1", help="the net's budget per move: time=S or nodes=N")
    ap.add_argument("--out", default=None, help="folder for the hub, logs and PGNs (default: a temporary one)")
    ap.add_argument("--png", default=None,
                    help="the per-cycle Elo curve (default: learning.png in --out; the README's figure is bench/learning.png)")
    ap.add_argument("--skip-training", action="store_true", help="measure the hub already in --out")
    ap.add_argument("--newest", action="store_true",
                    help="measure the newest played net (model.pt or its averaged weights), not model_best.pt")
    ap.add_argument("--vs-best", type=int, default=0, help="with --newest: games against model_best.pt")
    ap.add_argument("--mate-nodes", type=int, default=400, help="search nodes per mate puzzle")
    ap.add_argument("train_args", nargs="*", help="extra flags for l4demons train (after --)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    out = Path(args.out or tempfile.mkdtemp(prefix="l4d-learning-"))
    out.mkdir(parents=True, exist_ok=True)
    hub_dir = out / "hub"
    png = Path(args.png) if args.png else out / "learning.png"
    train_s = None if args.skip_training else train(hub_dir, args.minutes, args.train_args, out / "train.log")
    hub = LocalHub(hub_dir)
    rows = read_metrics(hub.download(METRICS_FILE))
    initial = next(c for c in hub.history() if c.message == INITIAL_MESSAGE)
    best_path, initial_path = out / "final_best.pt", out / "initial.pt"
    best_path.write_bytes((hub.download(BEST_FILE) or hub.download(MODEL_FILE)).read_bytes())
    label, measured = "model_best.pt", best_path
    if args.newest:
        from arms import final_net  # bench/arms.py: the newest played net of a hub (arms imports this module)
        label, measured = "the newest net", out / "final_newest.pt"
        final_net(out, newest=True).replace(measured)
    initial_path.write_bytes(hub.download(MODEL_FILE, initial.id).read_bytes())

    best = apply_tc(PlayerSpec.net(measured), args.tc)
    logging.info("[BENCH] measuring %s: %d games against the anchors, %d against the material grabber, %d against the "
                 "initial net, at %s", label, args.anchor_games, args.material_games, args.initial_games, args.tc)
    last_elo = next((r["elo"] for r in reversed(rows) if r.get("elo") is not None), None)
    est = full_measurement(best, args.anchor_games, prior_elo=last_elo, pgn_path=out / "anchors.pgn", seed=11)
    openings = load_openings(count=max(1, max(args.material_games, args.initial_games) // 2), seed=12)
    vs_material = play_match(best, PlayerSpec.material(), openings, args.material_games, seed=13,
                             event="learning bench")
    vs_initial = play_match(best, apply_tc(PlayerSpec.net(initial_path), args.tc), openings, args.initial_games,
                            seed=14, event="learning bench")
    vs_best = (play_match(best, apply_tc(PlayerSpec.net(best_path), args.tc), openings, args.vs_best, seed=15,
                          event="learning bench") if args.newest and args.vs_best else None)
    subprocess.run([sys.executable, "-m", "l4demons", "report", "--hub", str(hub_dir), "--out", str(png)], check=True)

    hours = sum(r.get("seconds", 0) for r in rows) / 3600
    measure = sum(r.get("measure_seconds") or 0 for r in rows) / 3600  # game-process hours, all processes
    cores = os.cpu_count() or 1
    last = rows[-1]
    print()
    print(f"training: {'%.1f min wall, ' % (train_s / 60) if train_s else ''}{last['cycle']} cycles, "
          f"{sum(r['games'] for r in rows)} games, {sum(r['positions'] for r in rows)} positions, "
          f"{last['steps']} steps; measurement games {100 * measure / max(hours * cores, 1e-9):.0f}% of the "
          f"{cores} cores' time (beside training); "
          f"last per-cycle Elo {last.get('elo')} [{last.get('elo_lo')}, {last.get('elo_hi')}]")
    print()
    which = f"the newest net (cycle {last['cycle']}" if args.newest else \
        f"final model_best.pt (cycle {json.dumps(best_cycle(rows))}"
    print(f"{which}, {args.tc} a move):")
    print()
    print("```")
    print(format_table(est))
    print("```")
    print()
    print(score_table(f"{label} vs", [("one-ply material grabber", vs_material),
                                      ("its initial random weights", vs_initial),
                                      (f"model_best.pt (cycle {json.dumps(best_cycle(rows))})", vs_best)]))
    print(f"\nper-cycle Elo curve: {png}")
    print()
    print(probe_table({f"final {label}" if not args.newest else label: measured, "initial weights": initial_path}, args.mate_nodes))


def probe_table(nets: dict[str, Path], mate_nodes: int = 400) -> str:
    """The probes of each net as a markdown table (value gaps: piece up minus piece down, side to move's view)."""
    rows = ["| net | queen up / down | knight up / down | free capture mass (uniform) | mate in 1 | mate in 2 |",
            "|---|---|---|---|---:|---:|"]
    for name, path in nets.items():
        net, _ = load_network(path)
        r, m = probe(net), mate_probe(net, nodes=mate_nodes)
        rows.append(f"| {name} | {r.ahead['queen']:+.2f} / {r.behind['queen']:+.2f} | {r.ahead['knight']:+.2f} / "
                    f"{r.behind['knight']:+.2f} | {r.capture_mass:.2f} ({r.uniform_mass:.2f}) | "
                    f"{100 * m.mate_in_1:.0f}% | {100 * m.mate_in_2:.0f}% |")
    return "\n".join(rows) + f"\n\n(mate puzzles: {m.puzzles} of each kind at {mate_nodes} nodes)"


if __name__ == "__main__":
    main()
