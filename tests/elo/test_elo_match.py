"""Real games: PGN with headers, consistent tallies, colours swapped, budgets kept."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import chess
import chess.pgn
import pytest

from l4demons.elo.engines import find_stockfish
from l4demons.elo.errors import StockfishNotFound
from l4demons.elo.game import play_game
from l4demons.elo.match import play_match, schedule, write_pgn
from l4demons.elo.openings import BUILTIN_OPENINGS, Opening
from l4demons.elo.players import MaterialGrabber, PlayerSpec, RandomMover

OPENINGS = list(BUILTIN_OPENINGS[:3])


def _has_stockfish() -> bool:
    try:
        find_stockfish()
    except StockfishNotFound:
        return False
    return True


def test_random_vs_material_in_worker_processes_writes_valid_pgn() -> None:
    result = play_match(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 6, max_plies=80, workers=2)
    assert result.games == 6
    assert result.wins + result.draws + result.losses == 6
    assert [r.index for r in result.records] == list(range(6))
    assert [r.a_white for r in result.records] == [True, False] * 3
    score = 0.0
    for record, opening in zip(result.records, [o for o in OPENINGS for _ in (0, 1)], strict=True):
        game = chess.pgn.read_game(io.StringIO(record.pgn))
        assert game is not None and not game.errors
        headers = game.headers
        for key in ("Event", "Site", "Date", "Round", "White", "Black", "Result", "Opening", "Termination"):
            assert headers.get(key), key
        assert headers["Result"] == record.result
        assert headers["Opening"] == opening.name
        assert {headers["White"], headers["Black"]} == {"material", "random"}
        assert (headers["White"] == "material") == record.a_white
        moves = [m.uci() for m in game.mainline_moves()]
        assert tuple(moves[: len(opening.moves)]) == opening.moves
        assert len(moves) == record.plies <= 80
        board = game.end().board()
        if record.termination == "checkmate":
            assert board.is_checkmate()
        score += record.score_a
    assert score == result.wins + 0.5 * result.draws


def test_games_end_by_rule_or_adjudication() -> None:
    result, termination, game, _ = play_game(RandomMover(1), RandomMover(2), OPENINGS[0], max_plies=20)
    assert (result, termination) == ("1/2-1/2", "adjudicated at 20 plies")
    assert len(list(game.mainline_moves())) == 20
    # A mate in the opening line itself ends the game at once.
    fools = Opening.from_san("Fool's mate", "f3 e5 g4 Qh4#")
    result, termination, _, _ = play_game(MaterialGrabber(0), MaterialGrabber(0), fools)
    assert (result, termination) == ("0-1", "checkmate")


def test_records_say_what_each_side_spent_and_the_pgn_shows_it_per_move(tmp_path) -> None:
    network = pytest.importorskip("l4demons.network")
    cfg = network.NetConfig.from_name("tiny")
    path = tmp_path / "model.pt"
    network.save_weights(network.build_network(cfg, seed=0), cfg, path)
    result = play_match(PlayerSpec.net(path, nodes=8), PlayerSpec.material(), OPENINGS[:1], 2, max_plies=16, workers=0)
    book = len(OPENINGS[0].moves)
    for record in result.records:  # A is white in the first game and black in the second
        net, grabber = record.thinking
        assert net.moves + grabber.moves == record.plies - book
        assert abs(net.moves - grabber.moves) <= 1
        assert net.nodes >= 8 * net.moves and grabber.nodes == 0
        assert net.seconds > 0 and net.nodes_per_second > 0
        game = chess.pgn.read_game(io.StringIO(record.pgn))
        comments = [node.comment for node in game.mainline()][book:]
        net_plies = comments[0 if record.a_white else 1::2]
        assert all(c.endswith("s") and " nodes " in c for c in net_plies)
        assert not any("nodes" in c for c in comments[1 if record.a_white else 0::2])
    assert result.thinking("a") == result.records[0].thinking[0] + result.records[1].thinking[0]
    assert result.thinking("b").nodes == 0


THREADS_IN_A_WORKER = """
import sys
import torch  # at the top of the main module, as bench/learning.py's imports bring it: spawn re-imports it
from l4demons.elo.pool import GamePool

def threads():
    return torch.get_num_threads()

if __name__ == "__main__":
    torch.set_num_threads(2)
    with GamePool(1) as pool:
        print(pool._pool.submit(threads).result())
"""


def test_a_game_worker_runs_torch_on_one_thread_even_when_the_main_module_imported_it(tmp_path) -> None:
    pytest.importorskip("torch")
    script = tmp_path / "main_imports_torch.py"
    script.write_text(THREADS_IN_A_WORKER)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_schedule_pairs_each_opening_with_both_colours() -> None:
    jobs = schedule(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 7)
    assert [(j.opening.name, j.a_white) for j in jobs[:4]] == [
        (OPENINGS[0].name, True), (OPENINGS[0].name, False), (OPENINGS[1].name, True), (OPENINGS[1].name, False)]
    assert jobs[6].opening == OPENINGS[0]  # wraps around
    with pytest.raises(ValueError):
        schedule(PlayerSpec.material(), PlayerSpec.random(), [], 2)


def test_budgets_stop_scheduling() -> None:
    nothing = play_match(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 6, workers=0, time_budget_s=0)
    assert nothing.games == 0 and nothing.score == 0.5
    early = play_match(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 6, workers=0, max_plies=60,
                       should_stop=lambda tally: sum(tally) >= 2)
    assert early.games == 2


def test_seeded_matches_repeat() -> None:
    a = play_match(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 2, workers=0, max_plies=60, seed=4)
    b = play_match(PlayerSpec.material(), PlayerSpec.random(), OPENINGS, 2, workers=0, max_plies=60, seed=4)
    assert [r.pgn.split("\n\n", 1)[1] for r in a.records] == [r.pgn.split("\n\n", 1)[1] for r in b.records]


def test_write_pgn_is_atomic(tmp_path) -> None:
    out = tmp_path / "games.pgn"
    write_pgn(out, ['[Event "a"]\n\n1. e4 *', '[Event "b"]\n\n1. d4 *'])
    assert out.read_text().count("[Event") == 2
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.skipif(not _has_stockfish(), reason="stockfish not installed")
def test_stockfish_beats_the_random_mover() -> None:
    result = play_match(PlayerSpec.stockfish(elo=1350), PlayerSpec.random(), OPENINGS[:1], 2, workers=0)
    assert result.wins == 2
    assert "sf-elo1350" in result.records[0].pgn
