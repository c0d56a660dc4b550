"""PGN input: streamed (.pgn and .pgn.zst), filtered by rating, the move played as the target."""

import io

import chess
import chess.pgn
import numpy as np
import pytest
import zstandard

from l4demons.encoding import move_to_index
from l4demons.pretrain import pgn

GAMES = """[Event "rated"]
[WhiteElo "2100"]
[BlackElo "2050"]
[Result "1-0"]

1. e4 { [%eval 0.3] } e5 { [%eval #4] } 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0

[Event "low"]
[WhiteElo "1200"]
[BlackElo "2300"]
[Result "0-1"]

1. f3 e5 2. g4 Qh4# 0-1

[Event "unfinished"]
[Result "*"]

1. d4 d5 *
"""


@pytest.fixture
def files(tmp_path):
    plain = tmp_path / "games.pgn"
    plain.write_text(GAMES)
    packed = tmp_path / "games.pgn.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(GAMES.encode()))
    return plain, packed


def test_plain_and_zstd_files_read_alike(files):
    for path in files:
        records, read = pgn.pgn_games([str(path)], None, 10**6, float("inf"))
        assert read == 3 and [len(r) for r in records] == [7, 4]  # the unfinished game has no result


def test_min_elo_keeps_games_whose_players_are_both_rated_above(files):
    records, _ = pgn.pgn_games([str(files[0])], 2000, 10**6, float("inf"))
    assert [len(r) for r in records] == [7]


def test_targets_are_the_moves_played_and_the_results_or_evals():
    game = chess.pgn.read_game(io.StringIO(GAMES))
    r = pgn.game_record(game)
    board = chess.Board()
    for i, move in enumerate(game.mainline_moves()):
        lo, hi = r.policy_offsets[i], r.policy_offsets[i + 1]
        target = r.policy_indices[lo:hi][np.argmax(r.policy_probs[lo:hi])]
        assert target == move_to_index(move, board.turn)
        board.push(move)
    assert r.results.tolist() == [1, -1, 1, -1, 1, -1, 1]  # White won: +1 for White to move
    q = r.values.astype(np.float32)
    assert q[0] == 1.0  # no eval before the first move: the result
    assert -0.2 < q[1] < 0  # Black to move after 1. e4 {+0.3}: slightly worse, not lost
    assert q[2] == 1.0  # after 1... e5 {#4}: White mates


def test_a_file_that_is_not_pgn_is_refused(tmp_path):
    junk = tmp_path / "notes.pgn"
    junk.write_bytes(b"\x00\x01 this is not a chess game\n" * 10)
    with pytest.raises(pgn.PgnError, match="no PGN game"):
        list(pgn.read_games(junk))
    fake_zst = tmp_path / "x.pgn.zst"
    fake_zst.write_text("not compressed")
    with pytest.raises(pgn.PgnError, match="not a readable PGN"):
        list(pgn.read_games(fake_zst))
