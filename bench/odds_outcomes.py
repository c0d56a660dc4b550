"""What the games say a piece is worth: the outcomes of a run's material-odds starts, by quarter of the run.

    python bench/odds_outcomes.py --hub runs/hub

A value probe (``bench/probes.py``) asks the net what a queen or a knight up
is worth at the start; this asks the run's own games. Every self-play chunk
the hub ever committed is read back (through its history, so chunks that
have left the window count too), the games that began from an odds start
(:mod:`l4demons.odds`: the initial position a queen, rook, bishop or knight
short) are picked out, and for each piece and quarter of the run it prints
the mean outcome for the side with the extra piece (W - L, the probe's
scale) beside the mean search value recorded at the start. Where the two
agree and the outcome is small, the value head is right about its data and
only stronger play can raise it; where the outcome is large and the value
small, the head underfits.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

from l4demons.checkpoint import is_replay_file
from l4demons.encoding import piece_counts
from l4demons.hub import open_hub
from l4demons.replay import ReplayChunk, is_teacher

PIECES = {1: "knight", 2: "bishop", 3: "rook", 4: "queen"}
"""Index into a side's piece counts (pawn, knight, bishop, rook, queen, king) -> name."""


def odds_games(chunk: ReplayChunk) -> list[tuple[str, int, float]]:
    """(piece, outcome, search value) of each odds game in ``chunk``, both for the side with the extra piece."""
    starts = chunk.game_offsets[:-1]
    counts = piece_counts(chunk.positions[starts])
    out = []
    for start, c in zip(starts, counts):
        diff = c[:6] - c[6:]
        if c.sum() != 31 or c[0] != 8 or c[6] != 8:  # an odds start lacks one piece and no pawn
            continue
        short = [k for k in PIECES if diff[k] != 0]
        if len(short) != 1:
            continue
        sign = int(np.sign(diff[short[0]]))
        out.append((PIECES[short[0]], int(chunk.results[start]) * sign, float(chunk.values[start]) * sign))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--parts", type=int, default=4, help="split the run's chunks into this many parts")
    args = ap.parse_args()
    hub = open_hub(args.hub)
    where: dict[str, str] = {}  # chunk file -> a revision that holds it
    for info in hub.history():
        for name in hub.list_files(info.id):
            if is_replay_file(name) and not is_teacher(name):
                where.setdefault(name, info.id)
    if not where:
        sys.exit(f"odds outcomes: no self-play chunks in {args.hub}")
    names = sorted(where)
    cycles = [Path(name).stem.split("-")[0] for name in names]
    parts = np.array_split(np.arange(len(names)), max(1, min(args.parts, len(names))))
    print(f"\n{len(names)} self-play chunks; odds games by part of the run, the side with the extra piece:\n")
    print("| part | chunks | " + " | ".join(f"{p}: games, W-L, search value" for p in PIECES.values()) + " |")
    print("|---|---|" + "---|" * len(PIECES))
    for k, idx in enumerate(parts, 1):
        games: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        for i in idx:
            path = hub.download(names[i], where[names[i]])
            for piece, result, value in odds_games(ReplayChunk.load(path)):
                games[piece].append((result, value))
        cells = []
        for piece in PIECES.values():
            g = np.array(games[piece], dtype=float).reshape(-1, 2)
            cells.append(f"{len(g)}, {g[:, 0].mean():+.2f}, {g[:, 1].mean():+.2f}" if len(g) else "0")
        print(f"| {k} | {cycles[idx[0]]}-{cycles[idx[-1]]} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
