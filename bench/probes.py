"""Probe every net of a run: does the value head see material, does the policy take free pieces?

    python bench/probes.py --hub runs/hub              # every commit's model.pt, oldest first
    python bench/probes.py --hub runs/hub --every 5    # every fifth commit

Prints one row per commit (:mod:`l4demons.probes`): the value of being a
queen, a rook or a knight up minus that of being the same piece down
(side to move's view, both sides to move averaged in), the start
position's value, and the policy's mass on a free capture against a
uniform policy's. A healthy run's gaps grow from zero within minutes; a
run whose gaps stay at zero has a broken or drowned learning signal.
"""

from __future__ import annotations

import argparse
import re

from l4demons.checkpoint import MODEL_FILE
from l4demons.hub import open_hub
from l4demons.network import load_network
from l4demons.probes import probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--every", type=int, default=1, help="probe every Nth commit")
    args = ap.parse_args()
    hub = open_hub(args.hub)
    commits = [c for c in reversed(hub.history()) if MODEL_FILE in hub.list_files(c.id)][:: args.every]
    print("| commit | cycle | queen gap | rook gap | knight gap | start value | free capture mass (uniform) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in commits:
        net, _ = load_network(hub.download(MODEL_FILE, c.id))
        r = probe(net)
        m = re.search(r"cycle (\d+)", c.message)
        cycle = m.group(1) if m else "0"
        gap = {p: r.ahead[p] - r.behind[p] for p in r.ahead}
        print(f"| {c.id[:8]} | {cycle} | {gap['queen']:+.3f} | {gap['rook']:+.3f} | {gap['knight']:+.3f} "
              f"| {r.start:+.3f} | {r.capture_mass:.3f} ({r.uniform_mass:.3f}) |")


if __name__ == "__main__":
    main()
