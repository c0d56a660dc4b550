"""A warm start on this machine: teacher labels for 30 minutes, measured by games; then self-play on top.

    python bench/warmstart.py                        # the issue's proof (about 1 h 30 min in all)
    python bench/warmstart.py --minutes 5 --anchor-games 40 --stockfish-games 10 --cycles 1   # a quicker look

1. ``l4demons pretrain --hub H --teacher stockfish --minutes M`` on an empty
   hub in a child process, as a user runs it (extra flags after ``--``).
2. ``model_best.pt`` against the calibrated anchors nearest it (``l4demons
   elo``'s full measurement, ``--anchor-games``) and against Stockfish
   ``UCI_Elo`` 1350 (0.1 s a move), the net at ``--tc`` (0.1 s a move by default).
3. ``l4demons train --cycles N`` with default flags on the same hub, then the
   same measurement of the hub's ``model.pt`` (the newest net: self-play must
   not have thrown the warm start away, whatever the gate kept as best).

Prints the table that the README carries.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from l4demons.checkpoint import BEST_FILE, MODEL_FILE
from l4demons.elo import PlayerSpec, apply_tc, full_measurement
from l4demons.elo.match import play_match
from l4demons.elo.openings import load_openings
from l4demons.hub.local import LocalHub

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import run_cli, score_row  # noqa: E402  (bench/learning.py: the same child run and score table)


def measure(weights: Path, args: argparse.Namespace, pgn: Path, seed: int):
    """(Elo estimate, result against Stockfish 1350) of ``weights`` at ``args.tc``."""
    net = apply_tc(PlayerSpec.net(weights), args.tc)
    logging.info("[BENCH] measuring %s: %d anchor games, %d against Stockfish 1350 at %s", weights.name,
                 args.anchor_games, args.stockfish_games, args.tc)
    est = full_measurement(net, args.anchor_games, prior_elo=1000, pgn_path=pgn, seed=seed)
    sf = PlayerSpec.stockfish(elo=1350, time=0.1)
    openings = load_openings(count=max(1, args.stockfish_games // 2), seed=seed + 1)
    vs_sf = play_match(net, sf, openings, args.stockfish_games, seed=seed + 2, event="warm-start bench")
    return est, vs_sf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="warm-start budget (labelling and training)")
    ap.add_argument("--anchor-games", type=int, default=200, help="games against the calibrated anchors")
    ap.add_argument("--stockfish-games", type=int, default=40, help="games against Stockfish UCI_Elo 1350")
    ap.add_argument("--cycles", type=int, default=3, help="default self-play cycles after the warm start")
    ap.add_argument("--tc", default="time=0.1", help="budget per move: time=S or nodes=N")
    ap.add_argument("--out", default=None, help="folder for the hub, logs and PGNs (default: a temporary one)")
    ap.add_argument("pretrain_args", nargs="*", help="extra flags for l4demons pretrain (after --)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    out = Path(args.out or tempfile.mkdtemp(prefix="l4d-warmstart-"))
    out.mkdir(parents=True, exist_ok=True)
    hub_dir = out / "hub"
    warm_s = run_cli(["pretrain", "--hub", str(hub_dir), "--teacher", "stockfish", "--minutes", str(args.minutes),
                  *args.pretrain_args], out / "pretrain.log")
    hub = LocalHub(hub_dir)
    title = hub.history()[0].message.splitlines()[0]
    warm_path = out / "warm_best.pt"
    warm_path.write_bytes(hub.download(BEST_FILE).read_bytes())
    warm = measure(warm_path, args, out / "warm.pgn", seed=21)

    rows = [("warm start", warm_s, title, warm)]
    if args.cycles:
        train_s = run_cli(["train", "--hub", str(hub_dir), "--cycles", str(args.cycles)], out / "train.log")
        after_path = out / "after_selfplay.pt"
        after_path.write_bytes(hub.download(MODEL_FILE).read_bytes())
        rows.append((f"+ {args.cycles} self-play cycles (model.pt)", train_s,
                     hub.history()[0].message.splitlines()[0], measure(after_path, args, out / "after.pgn", seed=31)))

    print()
    for name, seconds, commit, _ in rows:
        print(f"{name}: {seconds / 60:.1f} min wall; commit \"{commit}\"")
    print()
    print(f"| net ({args.tc} a move) | anchor games | Elo | 95% interval |")
    print("|---|---:|---:|---|")
    for name, _, _, (est, _) in rows:
        print(f"| {name} | {est.games} | {est.elo:.0f} | {est.lo:.0f}..{est.hi:.0f} |")
    print()
    print("| vs Stockfish UCI_Elo 1350 | games | W/D/L | score | 95% interval |")
    print("|---|---:|---|---:|---|")
    for name, _, _, (_, vs_sf) in rows:
        print(score_row(name, vs_sf))


if __name__ == "__main__":
    main()
