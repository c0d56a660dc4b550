"""Search settings at play, decided by games: one net, the bot's search set two ways, head to head.

    python bench/search.py --net model_best.pt --arm "base=" --arm "fresh=reuse_tree=0"
    python bench/search.py --net model_best.pt --arm "base=" --arm "c1=c_puct=1.0" --stockfish-games 80

Training makes the net; the search decides what the net's knowledge buys in a move's time. So a change to
the search (tree reuse, the exploration weight, first-play urgency) is tested on a fixed net: the first arm
plays each other arm in colour-swapped book openings at ``--tc`` (0.1 s a move) until a sequential test
decides (:mod:`l4demons.elo.h2h`) or ``--games`` are played; with ``--stockfish-games`` every arm also plays
clean Stockfish ``UCI_Elo`` 1350 at 0.1 s. An arm is ``NAME=key=value ...`` over
:data:`l4demons.elo.players.NET_SEARCH_PARAMS`; no settings is the bot's default. Games run one per core,
so run it on a quiet machine: the clock is part of what is measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from l4demons.elo import PlayerSpec, apply_tc
from l4demons.elo.h2h import format_head_to_head, head_to_head
from l4demons.elo.match import play_match
from l4demons.elo.openings import load_openings
from l4demons.elo.players import NET_SEARCH_PARAMS


def parse_arm(text: str) -> tuple[str, dict[str, float | int | bool]]:
    """``name=c_puct=1.0 reuse_tree=0`` -> (name, settings).

    :raises argparse.ArgumentTypeError: no name, an unknown setting, or a value that is not a number.
    """
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"an arm is NAME=SETTINGS, got {text!r}")
    settings: dict[str, float | int | bool] = {}
    for item in rest.split():
        key, eq, value = item.partition("=")
        if not eq or key not in NET_SEARCH_PARAMS:
            raise argparse.ArgumentTypeError(f"{item!r}: a setting is KEY=VALUE, KEY one of {list(NET_SEARCH_PARAMS)}")
        try:
            settings[key] = (bool(int(value)) if key == "reuse_tree" else int(value) if key == "batch_size"
                             else float(value))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: {value!r} is not a number") from None
    return name.strip(), settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", required=True, type=Path, help="the weights file every arm plays")
    ap.add_argument("--arm", action="append", type=parse_arm, required=True,
                    help="NAME=SETTINGS (at least two; the first is the baseline)")
    ap.add_argument("--tc", default="time=0.1", help="budget per move: time=S or nodes=N")
    ap.add_argument("--games", type=int, default=200, help="most head-to-head games per challenger")
    ap.add_argument("--stockfish-games", type=int, default=0, help="games of every arm against Stockfish 1350")
    ap.add_argument("--out", type=Path, default=Path("search-bench"), help="PGN files go here")
    args = ap.parse_args()
    if len(args.arm) < 2:
        sys.exit("search bench: give at least two arms (the first is the baseline)")
    if not args.net.is_file():
        sys.exit(f"search bench: no weights file at {args.net}")
    args.out.mkdir(parents=True, exist_ok=True)

    def player(name: str, settings: dict[str, float | int | bool]) -> PlayerSpec:
        return apply_tc(PlayerSpec.net(args.net, label=name, **settings), args.tc)

    print(f"\nsearch arms: {args.net.name}, games at {args.tc}\n")
    if args.stockfish_games:
        stockfish = PlayerSpec.stockfish(elo=1350, time=0.1)
        openings = load_openings(count=max(1, args.stockfish_games // 2), seed=21)
        print("| arm | settings | vs Stockfish 1350 (W/D/L, score) |\n|---|---|---|")
        for name, settings in args.arm:
            sf = play_match(player(name, settings), stockfish, openings, args.stockfish_games, seed=24,
                            event="search bench")
            text = " ".join(f"{k}={v:g}" for k, v in settings.items()) or "(defaults)"
            print(f"| {name} | `{text}` | {sf.wins}/{sf.draws}/{sf.losses}, {sf.score:.3f} |", flush=True)
    base_name, base_settings = args.arm[0]
    for name, settings in args.arm[1:]:
        h2h = head_to_head(player(name, settings), player(base_name, base_settings), max_games=args.games,
                           pgn_path=args.out / f"{name}_vs_{base_name}.pgn", seed=23)
        print(f"\n```\n{format_head_to_head(h2h)}\n```", flush=True)


if __name__ == "__main__":
    main()
