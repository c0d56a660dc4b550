"""A warm start on this machine: teacher labels for 30 minutes, measured by games; then self-play on top.

    python bench/warmstart.py                        # the issue's proof (about 1 h 40 min in all)
    python bench/warmstart.py --minutes 5 --train-minutes 2 --anchor-games 40 --stockfish-games 10   # a quicker look
    python bench/warmstart.py --out DIR --skip-pretrain --train-minutes 0 --anchor-games 0   # DIR's warm net again
    python bench/warmstart.py --out DIR --skip-pretrain --skip-training                     # both of DIR's nets again

1. ``l4demons pretrain --hub H --teacher stockfish --minutes M`` on an empty
   hub in a child process, as a user runs it (extra flags after ``--``).
2. ``model_best.pt`` against the calibrated anchors nearest it (``l4demons
   elo``'s full measurement, ``--anchor-games``), against clean Stockfish
   ``UCI_Elo`` 1350 (0.1 s a move) and against the one-ply material grabber,
   the net at ``--tc`` (0.1 s a move by default). Every game goes to a PGN in
   ``--out``, each move with its time and nodes.
3. ``l4demons train --hours M/60`` with default flags on the same hub
   (``--train-minutes``), then the same measurement of the hub's final
   ``model_best.pt``, and that net against the warm net head to head: the
   gate must never have promoted a net weaker than the warm start.

Prints the table that the README carries.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from l4demons.checkpoint import BEST_FILE, METRICS_FILE, read_metrics
from l4demons.elo import PlayerSpec, apply_tc, full_measurement
from l4demons.elo.match import play_match, write_pgn
from l4demons.elo.openings import load_openings
from l4demons.hub.local import LocalHub

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import best_cycle, run_cli, score_table  # noqa: E402  (bench/learning.py: the same child run and score table)


def measure(weights: Path, args: argparse.Namespace, pgn: Path, seed: int):
    """(Elo estimate or None, result against Stockfish 1350, result against the grabber) of ``weights`` at
    ``args.tc``; the games go to ``pgn`` (anchors) and its ``-sf1350`` and ``-material`` siblings."""
    net = apply_tc(PlayerSpec.net(weights), args.tc)
    logging.info("[BENCH] measuring %s: %d anchor games, %d against Stockfish 1350, %d against the grabber, at %s",
                 weights.name, args.anchor_games, args.stockfish_games, args.material_games, args.tc)
    est = full_measurement(net, args.anchor_games, prior_elo=1000, pgn_path=pgn, seed=seed) if args.anchor_games else None
    sf = PlayerSpec.stockfish(elo=1350, time=0.1)
    openings = load_openings(count=max(1, args.stockfish_games // 2), seed=seed + 1)
    vs_sf = play_match(net, sf, openings, args.stockfish_games, seed=seed + 2, event="warm-start bench")
    write_pgn(pgn.with_name(f"{pgn.stem}-sf1350.pgn"), vs_sf.pgns)
    vs_material = play_match(net, PlayerSpec.material(), openings, args.material_games, seed=seed + 3,
                             event="warm-start bench")
    write_pgn(pgn.with_name(f"{pgn.stem}-material.pgn"), vs_material.pgns)
    return est, vs_sf, vs_material


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="warm-start budget (labelling and training)")
    ap.add_argument("--anchor-games", type=int, default=200, help="games against the calibrated anchors")
    ap.add_argument("--stockfish-games", type=int, default=80, help="games against Stockfish UCI_Elo 1350")
    ap.add_argument("--material-games", type=int, default=20, help="games against the material grabber")
    ap.add_argument("--train-minutes", type=float, default=30.0, help="default self-play after the warm start")
    ap.add_argument("--h2h-games", type=int, default=40, help="the final best against the warm net")
    ap.add_argument("--tc", default="time=0.1", help="budget per move: time=S or nodes=N")
    ap.add_argument("--out", default=None, help="folder for the hub, logs and PGNs (default: a temporary one)")
    ap.add_argument("--skip-pretrain", action="store_true",
                    help="measure the warm start already in --out's hub instead of making one")
    ap.add_argument("--skip-training", action="store_true",
                    help="measure the self-play already on --out's hub (its model_best.pt) instead of training")
    ap.add_argument("pretrain_args", nargs="*", help="extra flags for l4demons pretrain (after --)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    out = Path(args.out or tempfile.mkdtemp(prefix="l4d-warmstart-"))
    out.mkdir(parents=True, exist_ok=True)
    hub_dir = out / "hub"
    if args.skip_pretrain and not (hub_dir.is_dir() and any(hub_dir.iterdir())):
        sys.exit(f"--skip-pretrain: no hub at {hub_dir} to measure; run without it first")
    warm_s = 0.0 if args.skip_pretrain else run_cli(
        ["pretrain", "--hub", str(hub_dir), "--teacher", "stockfish", "--minutes", str(args.minutes),
         *args.pretrain_args], out / "pretrain.log")
    hub = LocalHub(hub_dir)
    warm_commit = next(c for c in hub.history() if c.message.startswith("Warm start"))  # newest first
    title = warm_commit.message.splitlines()[0]
    warm_path = out / "warm_best.pt"
    warm_path.write_bytes(hub.download(BEST_FILE, warm_commit.id).read_bytes())
    warm = measure(warm_path, args, out / "warm.pgn", seed=21)

    rows = [("warm start", warm_s, title, warm)]
    h2h = None
    if args.train_minutes:
        train_s = 0.0 if args.skip_training else run_cli(
            ["train", "--hub", str(hub_dir), "--hours", str(args.train_minutes / 60)], out / "train.log")
        after_path = out / "after_selfplay_best.pt"
        after_path.write_bytes(hub.download(BEST_FILE).read_bytes())
        best = best_cycle(read_metrics(hub.download(METRICS_FILE)))
        rows.append((f"+ {args.train_minutes:g} min self-play (model_best.pt, cycle {best})", train_s,
                     hub.history()[0].message.splitlines()[0], measure(after_path, args, out / "after.pgn", seed=31)))
        if args.h2h_games:
            openings = load_openings(count=max(1, args.h2h_games // 2), seed=41)
            h2h = play_match(apply_tc(PlayerSpec.net(after_path), args.tc), apply_tc(PlayerSpec.net(warm_path), args.tc),
                             openings, args.h2h_games, seed=42, event="warm-start bench")

    print()
    for name, seconds, commit, _ in rows:
        print(f"{name}: {seconds / 60:.1f} min wall; commit \"{commit}\"")
    print()
    print(f"| net ({args.tc} a move) | anchor games | Elo | 95% interval |")
    print("|---|---:|---:|---|")
    for name, _, _, (est, _, _) in rows:
        if est is not None:
            print(f"| {name} | {est.games} | {est.elo:.0f} | {est.lo:.0f}..{est.hi:.0f} |")
    print()
    print(score_table("vs Stockfish UCI_Elo 1350", [(name, vs_sf) for name, _, _, (_, vs_sf, _) in rows]))
    print()
    print(score_table("vs the one-ply material grabber", [(name, vs_m) for name, _, _, (_, _, vs_m) in rows]))
    if h2h is not None:
        print()
        print(score_table("head to head", [("final model_best.pt vs the warm net", h2h)]))


if __name__ == "__main__":
    main()
