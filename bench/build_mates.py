"""Build the held-out mate puzzles that ``l4demons.probes.mate_probe`` reads (run once; the file is committed).

    python bench/build_mates.py                      # 150 mate-in-1 and 150 mate-in-2, seed 0
    python bench/build_mates.py --count 300 --seed 1 --out /tmp/mates.json

Positions come from games that Stockfish (an opponent and a teacher, never
part of the bot) plays against itself at depth 1 with a third of its moves
random, from the standard start: ordinary middlegame and endgame positions,
not composed problems, and none from self-play. A position where Stockfish
at ``--depth`` announces mate in 1 (or 2) for the side to move is a puzzle.
Its solutions are every legal move that mates (mate in 1) or after which
every reply allows a mate (mate in 2), found by an exact search rather than
the engine's depth-limited word, so a probe can score any move that keeps
the mate.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import chess
import chess.engine

from l4demons.elo.engines import find_stockfish

OUT = Path(__file__).resolve().parents[1] / "src" / "l4demons" / "data" / "mate_puzzles.json"


def mates_in(board: chess.Board, n: int) -> bool:
    """Whether the side to move mates in ``n`` (1 or 2) whatever the defence: an exact search, no engine."""
    for move in list(board.legal_moves):
        board.push(move)
        try:
            if board.is_checkmate():
                return True
            if n == 2 and not board.is_game_over() and all(_then_mates(board, r) for r in list(board.legal_moves)):
                return True
        finally:
            board.pop()
    return False


def _then_mates(board: chess.Board, reply: chess.Move) -> bool:
    board.push(reply)
    try:
        return mates_in(board, 1)
    finally:
        board.pop()


def solutions(board: chess.Board, n: int) -> list[str]:
    """Every move that keeps a forced mate in ``n`` (for n=1: the mating moves), found by exact search."""
    out = []
    for move in list(board.legal_moves):
        board.push(move)
        ok = board.is_checkmate() if n == 1 else (
            not board.is_game_over() and all(_then_mates(board, r) for r in list(board.legal_moves)))
        board.pop()
        if ok:
            out.append(move.uci())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=150, help="puzzles of each kind")
    ap.add_argument("--depth", type=int, default=10, help="Stockfish's depth for finding and checking mates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    found: dict[int, list[dict]] = {1: [], 2: []}
    seen: set[str] = set()
    with chess.engine.SimpleEngine.popen_uci(find_stockfish()) as engine:
        while min(len(v) for v in found.values()) < args.count:
            board = chess.Board()
            while not board.is_game_over() and board.ply() < 200:
                info = engine.analyse(board, chess.engine.Limit(depth=args.depth))
                mate = info["score"].relative.mate()
                key = board.board_fen() + (" w" if board.turn else " b")
                if mate in found and len(found[mate]) < args.count and key not in seen:
                    seen.add(key)
                    exact = solutions(board, mate)
                    if exact and (mate == 1 or not mates_in(board, 1)):  # Stockfish's depth-limited word, checked
                        found[mate].append({"fen": board.fen(), "solutions": exact})
                moves = list(board.legal_moves)
                if rng.random() < 1 / 3:
                    move = rng.choice(moves)
                else:
                    move = engine.play(board, chess.engine.Limit(depth=1)).move
                board.push(move)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"source": f"bench/build_mates.py --count {args.count} --depth {args.depth} "
                                              f"--seed {args.seed}", "mate_in_1": found[1], "mate_in_2": found[2]},
                                   indent=0) + "\n")
    print(f"wrote {args.out}: {len(found[1])} mate-in-1, {len(found[2])} mate-in-2 puzzles")


if __name__ == "__main__":
    main()
