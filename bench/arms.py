"""Arms side by side: does a change to learning make a stronger net in the same minutes on the same machine?

    python bench/arms.py --minutes 30 --arm "base=" --arm "new=--sample-plies 30"
    python bench/arms.py --minutes 30 --arm "a=--value-weight 0.25" --arm "b=--value-weight 1" --h2h-games 200
    python bench/arms.py --minutes 30 --arm "old=" --arm "new=" --source old=../old-checkout   # two commits
    python bench/arms.py --minutes 30 --from-hub warm-hub --arm "base=" --arm "slow=--teacher-halflife 400000"
    python bench/arms.py --minutes 30 --pretrain --arm "base=" --arm "soft=--multipv 4" --stockfish-games 40
    python bench/arms.py --minutes 30 --seeds 3,4,5 --arm "base=" --arm "new=--rescore-known-wins"

A change that has no flag (a search rule, a new target) is compared by
running the baseline arm from another checkout of the project
(``--source NAME=PATH``: ``git worktree add PATH REV``, its compiled core
built there with ``python setup.py build_ext --inplace``); only its
training runs from there, every match is played by this checkout's code.

1. Every arm's ``l4demons train`` runs at the same time, each from its own
   empty hub (or its own copy of ``--from-hub``, say a warm start) with
   ``--hours M/60 --workers W`` (W: the cores shared out, one each on 2
   cores, and as many torch threads) and the arm's flags: the same minutes of the same machine,
   whatever else it is doing, so a faster or slower machine moves every
   arm alike. With ``--pretrain`` every arm is a warm start instead:
   ``l4demons pretrain --teacher stockfish --minutes M --workers W`` (W
   labelling processes and W training threads) and the arm's flags.
2. The arms' final ``model_best.pt`` play each other (the first arm against
   each of the others) in colour-swapped book openings at ``--tc`` until a
   sequential probability ratio test decides (:mod:`l4demons.elo.h2h`) or
   ``--h2h-games`` are played, and each plays the one-ply material grabber
   (and, with ``--stockfish-games``, clean Stockfish ``UCI_Elo`` 1350 at
   0.1 s a move: warm starts beat the grabber every game). With
   ``--newest --last-nets K`` the head-to-head is each challenger's last K
   nets against the first arm's, cycle k back against cycle k back, the
   games split among them and pooled: one net is a noisy sample of its
   arm, since one cycle moves a young net's strength by as much as a change
   does.
3. One table: per arm its cycles, games, positions and the share of games
   ended by mate or another rule of chess (a warm start: its positions,
   steps and validation loss); the probes of every arm's net
   (bench/learning.py's table); then the match with its Elo interval and
   the SPRT's verdict.

A change stays only if the match says so (the brief's rule); the README's
"Arms" section carries the table this printed, with the command.

One run is one draw of the training, and training runs differ more than a
head-to-head's interval says: two arms with the same flags and the same
seed, 30 minutes each, played each other to a result well outside 0 (the
README's null run), and three changes each gave two runs whose intervals
did not overlap. So ``--seeds 3,4,5`` repeats steps 1-3 once per seed (each
arm with ``--seed S`` added, in ``OUT/seed-S``) and ends with one line per
challenger: its Elo in each run, the games pooled, and the interval from
the spread of the runs' Elo (Student's t over the runs), which is the one
that counts training noise.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning import probe_table  # noqa: E402  (bench/learning.py: the same probe rows)

from l4demons.checkpoint import (BEST_FILE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, load_optimizer_parts,  # noqa: E402
                                 read_metrics)
from l4demons.elo import PlayerSpec, apply_tc  # noqa: E402
from l4demons.elo.h2h import format_head_to_head, head_to_head  # noqa: E402
from l4demons.elo.match import play_match, write_pgn  # noqa: E402
from l4demons.elo.openings import load_openings  # noqa: E402
from l4demons.elo.rating import pairwise_elo  # noqa: E402
from l4demons.hub.local import LocalHub  # noqa: E402

RULE_ENDINGS = ("checkmate", "stalemate", "insufficient", "fifty_moves", "repetition")
"""Terminations by a rule of chess (not by the material count, the length cap or a resignation)."""
_RESULTS = re.compile(r"cycle (\d+): (\d+) games, .*?; results (.*)$")


def parse_arm(text: str) -> tuple[str, list[str]]:
    """``name=--flag value ...`` -> (name, flags).

    :raises argparse.ArgumentTypeError: no ``=`` or an empty name.
    """
    name, sep, flags = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"an arm is NAME=FLAGS, got {text!r}")
    return name.strip(), flags.split()


def parse_seeds(text: str) -> list[int]:
    """``3,4,5`` -> [3, 4, 5], distinct.

    :raises argparse.ArgumentTypeError: not distinct integers.
    """
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are integers separated by commas, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"the seeds must differ, got {text!r}")
    return seeds


def endings(log_text: str) -> tuple[dict[str, int], dict[str, int]]:
    """(terminations over the whole run, terminations of its last cycle) from a train log's result lines."""
    total: dict[str, int] = {}
    last: dict[str, int] = {}
    for line in log_text.splitlines():
        m = _RESULTS.search(line)
        if not m:
            continue
        last = {}
        for part in m.group(3).split(", "):
            kind, _, count = part.rpartition(" ")
            last[kind] = int(count)
            total[kind] = total.get(kind, 0) + int(count)
    return total, last


def rule_share(counts: dict[str, int]) -> float:
    games = sum(counts.values())
    return sum(counts.get(k, 0) for k in RULE_ENDINGS) / games if games else 0.0


def arm_env(workers: int, source: Path | None = None) -> dict[str, str]:
    """The environment of one arm's process: ``workers`` torch threads (its learner, or a warm start's training,
    as many as its self-play or labelling processes), and ``source``'s ``src`` first on the path.

    Without the thread cap every arm's learner took all the cores' threads, and arms at once on 2 cores
    backpropagated at 0.4-0.8 steps a second, a fraction of what their share of the machine allows.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(workers), "MKL_NUM_THREADS": str(workers)}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def train_arms(arms: list[tuple[str, list[str]]], minutes: float, workers: int, out: Path,
               sources: dict[str, Path] | None = None, start: Path | None = None, pretrain: bool = False) -> None:
    """Every arm's ``l4demons train`` (``pretrain``: its warm start) at once, each from its own empty hub;
    waits for all.

    ``sources``: arm name -> another checkout whose ``src`` that arm's training runs from.
    ``start``: a hub every arm's own starts as a copy of (its HEAD is where they continue).
    """
    procs = []
    for name, flags in arms:
        if start is not None:
            shutil.copytree(start, out / name / "hub")
        env = arm_env(workers, sources.get(name) if sources else None)
        cmd = [sys.executable, "-m", "l4demons", "train", "--hub", str(out / name / "hub"), "--hours",
               str(minutes / 60), "--workers", str(workers), *flags]
        if pretrain:
            cmd = [sys.executable, "-m", "l4demons", "pretrain", "--hub", str(out / name / "hub"), "--teacher",
                   "stockfish", "--minutes", str(minutes), "--workers", str(workers), "--elo-seconds", "0", *flags]
        (out / name).mkdir(parents=True, exist_ok=True)
        logging.info("[BENCH] arm %s: %s", name, " ".join(cmd[2:]))
        log = open(out / name / "train.log", "w")
        procs.append((name, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
    for name, log, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"arm {name}: {' '.join(proc.args[2:4])} exited {proc.returncode}; "
                             f"see {out / name / 'train.log'}")
        log.close()


def _revision(checkout: Path) -> str:
    """The short commit a checkout is at (or its path when git cannot say)."""
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(checkout)


def final_net(arm_dir: Path, newest: bool = False, back: int = 0) -> Path:
    """The arm's model_best.pt (its newest net if none, or if ``newest``) as ``<arm>.pt``: the name names the player.

    The newest net is the one the arm last played: ``model.pt``, or with
    ``--ema-steps`` the average of recent weights that ``optimizer.pt``
    holds (``model.pt`` keeps the raw weights training goes on from).
    ``back``: the newest net ``back`` commits (cycles) before the last, as ``<arm>-<back>.pt``.

    :raises SystemExit: the hub keeps no net that far back.
    """
    hub = LocalHub(arm_dir / "hub")
    if back:
        history = hub.history(limit=back + 1)
        revision = history[back].id if len(history) > back else None
        model = hub.download(MODEL_FILE, revision=revision) if revision else None
        if model is None:
            raise SystemExit(f"arm {arm_dir.name}: its hub keeps no net {back} cycle(s) before the last")
    else:
        revision, model = None, hub.download(MODEL_FILE)
    path = arm_dir / (f"{arm_dir.name}-{back}.pt" if back else f"{arm_dir.name}.pt")
    best = None if newest or back else hub.download(BEST_FILE)
    heavy = None if best is not None else hub.download(OPTIMIZER_FILE, revision=revision)
    average = load_optimizer_parts(heavy).get("ema") if heavy is not None else None
    if average is None:
        path.write_bytes((best or model).read_bytes())
    else:  # model.pt's config with the average's weights
        torch.save({**torch.load(model, map_location="cpu", weights_only=True), "state_dict": average}, path)
    return path


def snapshot_match(arms: list[tuple[str, list[str]]], out: Path, nets: dict[str, Path], last_nets: int, games: int,
                   tc: str) -> dict[str, tuple[int, int, int]]:
    """Every challenger's newest ``last_nets`` nets against the first arm's, cycle k back against cycle k back,
    ``games // last_nets`` games each, no early stop; prints each pair and the pooled games, returns the pooled
    (W, D, L) per challenger. ``nets``: each arm's newest net, already written (:func:`final_net`).

    One cycle of training moves a young net's strength as much as a whole change does (two adjacent
    cycles of one 30-minute run: +58 and -83 Elo, README), so the last net alone is a noisy sample of its arm.
    """
    per_pair = max(2, games // last_nets)
    openings = load_openings(count=max(1, per_pair // 2), seed=23)
    base = arms[0][0]

    def snapshots(name: str) -> list[Path]:
        return [nets[name], *(final_net(out / name, True, back) for back in range(1, last_nets))]

    base_nets = snapshots(base)
    pooled = {}
    for name, _ in arms[1:]:
        lines, tally = [], [0, 0, 0]
        for back, (mine, theirs) in enumerate(zip(snapshots(name), base_nets)):
            a, b = apply_tc(PlayerSpec.net(mine), tc), apply_tc(PlayerSpec.net(theirs), tc)
            match = play_match(a, b, openings, per_pair, seed=23 + back, event="arms bench")
            write_pgn(out / f"{name}_vs_{base}-{back}.pgn", match.pgns)
            lines.append(f"{match.a} vs {match.b}: +{match.wins} ={match.draws} -{match.losses}")
            tally = [tally[0] + match.wins, tally[1] + match.draws, tally[2] + match.losses]
        elo = pairwise_elo(*tally)
        lines.append(f"{name} vs {base}, their last {last_nets} nets: +{tally[0]} ={tally[1]} -{tally[2]} "
                     f"({sum(tally)} games), Elo {_signed(elo.elo)} [{_signed(elo.lo)}, {_signed(elo.hi)}]")
        print("\n```\n" + "\n".join(lines) + "\n```")
        pooled[name] = (tally[0], tally[1], tally[2])
    return pooled


_T975 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23)
"""Student's t, two-sided 95%, for 1..10 degrees of freedom (1.96 beyond)."""


def across_runs(name: str, tallies: list[tuple[int, int, int]]) -> str:
    """One line for a challenger's head-to-heads in several training runs (W, D, L each, its own side): the Elo of
    each run, of the games pooled (its interval counts the games only), and the mean of the runs' Elo with the
    interval their spread gives (Student's t; the one that counts the training's own noise)."""
    runs = [pairwise_elo(*t).elo for t in tallies]
    pooled = pairwise_elo(*(sum(t[i] for t in tallies) for i in range(3)))
    text = (f"{name}, {len(runs)} runs: " + ", ".join(_signed(e) for e in runs)
            + f"; games pooled {_signed(pooled.elo)} [{_signed(pooled.lo)}, {_signed(pooled.hi)}]"
            f" ({pooled.games} games)")
    if len(runs) < 2:
        return text
    mean = sum(runs) / len(runs)
    sd = (sum((e - mean) ** 2 for e in runs) / (len(runs) - 1)) ** 0.5
    half = (_T975[len(runs) - 2] if len(runs) <= 11 else 1.96) * sd / len(runs) ** 0.5
    return text + f"; over runs {_signed(mean)} [{_signed(mean - half)}, {_signed(mean + half)}]"


def _signed(elo: float) -> str:
    """``+12``, ``-3``, ``+0`` (never ``-0``), or ``+inf``/``-inf`` (a few games, one side scoring almost all)."""
    return f"{elo:+.0f}" if math.isinf(elo) else f"{round(elo):+d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", type=parse_arm, action="append", required=True,
                    help="NAME=FLAGS for l4demons train (the first arm is the baseline); give two or more")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget of every arm (wall clock, at once)")
    ap.add_argument("--workers", type=int, default=0, help="self-play workers per arm (0: the cores shared out)")
    ap.add_argument("--h2h-games", type=int, default=200, help="most games of each head-to-head (SPRT stops sooner)")
    ap.add_argument("--material-games", type=int, default=60, help="games of each arm against the material grabber")
    ap.add_argument("--tc", default="time=0.1", help="budget per move: time=S or nodes=N")
    ap.add_argument("--out", default=None, help="folder for hubs, logs and PGNs (default: a temporary one)")
    ap.add_argument("--from-hub", type=Path, default=None, metavar="HUB",
                    help="a local hub every arm starts from a copy of (default: empty hubs)")
    ap.add_argument("--newest", action="store_true",
                    help="play the net every arm last played (model.pt, or its average with --ema-steps), not its "
                         "model_best.pt: from a warm start the gate may keep the shared starting net in every arm")
    ap.add_argument("--pretrain", action="store_true",
                    help="every arm is a warm start: l4demons pretrain --teacher stockfish --minutes M and its flags")
    ap.add_argument("--stockfish-games", type=int, default=0,
                    help="games of each arm against clean Stockfish UCI_Elo 1350 at 0.1 s a move")
    ap.add_argument("--seeds", type=parse_seeds, default=None, metavar="S,S,...",
                    help="one training run of every arm per seed (--seed S added), and the Elo over the runs")
    ap.add_argument("--last-nets", type=int, default=1, metavar="K",
                    help="with --newest: each challenger's last K nets play the first arm's, cycle for cycle, "
                         "--h2h-games split among them, no early stop (1: the last net, SPRT)")
    ap.add_argument("--skip-training", action="store_true", help="measure the arms already in --out")
    ap.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                    help="train arm NAME from the checkout at PATH (its src/, core built in place)")
    args = ap.parse_args()
    if len(args.arm) < 2 or len({n for n, _ in args.arm}) != len(args.arm):
        ap.error("give at least two --arm, with distinct names")
    sources = {}
    for text in args.source:
        name, sep, path = text.partition("=")
        if not sep or name not in {n for n, _ in args.arm} or not (Path(path) / "src" / "l4demons").is_dir():
            ap.error(f"--source is NAME=PATH with NAME an arm and PATH a checkout of the project, got {text!r}")
        sources[name] = Path(path).resolve()
    if args.pretrain and (args.from_hub or sources):
        ap.error("--pretrain starts every arm from an empty hub with this checkout's code")
    if args.from_hub is not None and not (args.from_hub / "HEAD").is_file():
        ap.error(f"--from-hub {args.from_hub}: not a local hub with a commit")
    if args.last_nets < 1 or (args.last_nets > 1 and not args.newest):
        ap.error("--last-nets K needs K >= 1, and --newest when K > 1 (a hub keeps one model_best.pt)")
    if args.seeds and any("--seed" in flags for _, flags in args.arm):
        ap.error("--seeds gives every arm its --seed; leave --seed out of the arms' flags")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out or tempfile.mkdtemp(prefix="l4d-arms-"))
    workers = args.workers or max(1, (os.cpu_count() or 1) // len(args.arm))
    if not args.seeds:
        run_arms(args, args.arm, out, workers, sources)
        return
    tallies: dict[str, list[tuple[int, int, int]]] = {name: [] for name, _ in args.arm[1:]}
    for seed in args.seeds:
        print(f"\n## seed {seed}")
        seeded = [(name, [*flags, "--seed", str(seed)]) for name, flags in args.arm]
        for name, tally in run_arms(args, seeded, out / f"seed-{seed}", workers, sources).items():
            tallies[name].append(tally)
    print("\n```")
    for name, runs in tallies.items():
        print(across_runs(f"{name} vs {args.arm[0][0]}", runs))
    print("```")


def run_arms(args: argparse.Namespace, arms: list[tuple[str, list[str]]], out: Path, workers: int,
             sources: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
    """Steps 1-3 of the module's docstring for one training run of every arm; each challenger's (W, D, L)
    against the first arm."""
    if not args.skip_training:
        train_arms(arms, args.minutes, workers, out, sources, args.from_hub, args.pretrain)

    nets = {name: final_net(out / name, args.newest) for name, _ in arms}
    openings = load_openings(count=max(1, args.material_games // 2), seed=21)
    kind = "warm starts" if args.pretrain else f"{workers} self-play worker(s) each"
    played = "newest played nets (model.pt, or its average with --ema-steps)" if args.newest else "model_best.pt"
    print(f"\narms: {args.minutes:g} minutes each, at once, {kind}; {played}; games at {args.tc}\n")
    stockfish = PlayerSpec.stockfish(elo=1350, time=0.1)
    if args.pretrain:
        print("| arm | flags | positions | steps | validation loss | vs material grabber (W/D/L, score) "
              "| vs Stockfish 1350 (W/D/L, score) |")
        print("|---|---|---:|---:|---:|---|---|")
    else:
        print("| arm | flags | cycles | games | positions | steps | ended by a rule of chess (all / last cycle) "
              "| vs material grabber (W/D/L, score) |")
        print("|---|---|---:|---:|---:|---:|---|---|")
    start = read_metrics(LocalHub(args.from_hub).download(METRICS_FILE)) if args.from_hub else []
    start_steps = start[-1]["steps"] if start else 0
    for name, flags in arms:
        rows = read_metrics(LocalHub(out / name / "hub").download(METRICS_FILE))[len(start):]  # this run's cycles
        player = apply_tc(PlayerSpec.net(nets[name]), args.tc)
        grabber = play_match(player, PlayerSpec.material(), openings, args.material_games, seed=22, event="arms bench")
        flags_text = " ".join(flags) or "(defaults)"
        if sources:  # which code each arm trained with
            flags_text += f" @ {_revision(sources.get(name, Path(__file__).resolve().parent.parent))}"
        results = f"{grabber.wins}/{grabber.draws}/{grabber.losses}, {grabber.score:.3f}"
        if args.stockfish_games:
            sf = play_match(player, stockfish, openings, args.stockfish_games, seed=24, event="arms bench")
            results += f" | {sf.wins}/{sf.draws}/{sf.losses}, {sf.score:.3f}"
        if args.pretrain:
            warm = rows[-1]
            val = "n/a" if warm.get("val_loss") is None else f"{warm['val_loss']:.4f}"
            print(f"| {name} | `{flags_text}` | {warm['positions']} | {warm['steps']} | {val} | {results} |")
            continue
        total, last = endings((out / name / "train.log").read_text())
        print(f"| {name} | `{flags_text}` | {len(rows)} | {sum(r['games'] for r in rows)} "
              f"| {sum(r['positions'] for r in rows)} | {rows[-1]['steps'] - start_steps} | {rule_share(total):.2f} / "
              f"{rule_share(last):.2f} | {results} |")
    print()
    print(probe_table(nets))
    if args.last_nets > 1:
        return snapshot_match(arms, out, nets, args.last_nets, args.h2h_games, args.tc)
    base, base_net = arms[0][0], nets[arms[0][0]]
    tallies = {}
    for name, _ in arms[1:]:
        h2h = head_to_head(apply_tc(PlayerSpec.net(nets[name]), args.tc), apply_tc(PlayerSpec.net(base_net), args.tc),
                           max_games=args.h2h_games,
                           pgn_path=out / f"{name}_vs_{base}.pgn", seed=23)
        print(f"\n```\n{format_head_to_head(h2h)}\n```")
        tallies[name] = (h2h.match.wins, h2h.match.draws, h2h.match.losses)
    return tallies


if __name__ == "__main__":
    main()
