"""``pretrain --hub-positions``: the hub's own self-play positions, decoded and labelled by the teacher."""

from __future__ import annotations

import os

import chess
import numpy as np
import pytest

from l4demons.checkpoint import STATE_FILE, TrainingState, replay_file
from l4demons.encoding import POSITION_DTYPE, encode_position, legal_moves_and_indices, move_to_index
from l4demons.hub.local import LocalHub
from l4demons.odds import odds_board
from l4demons.pretrain import labels
from l4demons.pretrain.hub_positions import HubGame, decode_position, label_hub_games, sample_hub_games
from l4demons.replay import ReplayChunk, is_teacher
from l4demons.selfplay import GameRecord
from train_cli import FAST, ok, one_line_error, run_here

from test_labels_wdl import ScriptedTeacher
from test_pgn import GAMES

needs_stockfish = pytest.mark.skipif(not any(os.access(p, os.X_OK) for p in labels.STOCKFISH_PATHS),
                                     reason="needs stockfish")
TINY = ["--net", "tiny", "--elo-seconds", "0", "--batch-size", "8", "--workers", "1"]
REPETITION = 1  # bit 0 of a record's flags


def random_boards(n_games: int, seed: int) -> list[chess.Board]:
    """Every position of ``n_games`` seeded random games (captures, promotions, castling, en passant)."""
    rng = np.random.default_rng(seed)
    boards = []
    for _ in range(n_games):
        board = chess.Board()
        for _ in range(int(rng.integers(20, 160))):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(moves[int(rng.integers(len(moves)))])
            boards.append(board.copy(stack=False))
    return boards


# -- decoding ------------------------------------------------------------------------------------
def test_decoding_gives_back_every_record_but_its_repetition_flag():
    boards = random_boards(60, seed=1)
    recs = [encode_position(b) for b in boards]
    assert sum(b.turn == chess.BLACK for b in boards) > 1000 and sum(b.turn == chess.WHITE for b in boards) > 1000
    assert sum(int(r["ep"]) >= 0 for r in recs) >= 5 and sum(int(r["flags"]) >> 1 & 0b1111 != 0 for r in recs) > 500
    for board, rec in zip(boards, recs):
        decoded = decode_position(rec)
        assert decoded.turn == chess.WHITE and decoded.is_valid(), board.fen()
        again = encode_position(decoded)
        for field in ("pieces", "ep", "rule50"):
            assert np.array_equal(again[field], rec[field]), (field, board.fen())
        assert int(again["flags"]) & ~REPETITION == int(rec["flags"]) & ~REPETITION, board.fen()
        # The same position up to colour mirroring: its moves have the same policy indices.
        same = board if board.turn == chess.WHITE else board.mirror()
        assert decoded.board_fen() == same.board_fen() and decoded.castling_rights == same.castling_rights
        assert sorted(legal_moves_and_indices(decoded)[1]) == sorted(legal_moves_and_indices(board)[1])


def test_a_black_to_move_record_decodes_to_the_mirrored_board_with_white_to_move():
    board = chess.Board("rnbqkb1r/ppp1pppp/5n2/3pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3")  # e5xd6 en passant
    fen = board.fen().rsplit(" ", 1)[0]  # a record keeps no move number
    assert decode_position(encode_position(board)).fen().rsplit(" ", 1)[0] == fen
    black = board.mirror()  # the same position with Black to move: e4xd3 en passant
    assert black.turn == chess.BLACK and black.ep_square == chess.D3
    assert decode_position(encode_position(black)).fen().rsplit(" ", 1)[0] == fen
    assert move_to_index(chess.Move.from_uci("e5d6"), chess.WHITE) == move_to_index(chess.Move.from_uci("e4d3"),
                                                                                    chess.BLACK)


# -- drawing from the window -----------------------------------------------------------------------
def record_of(boards: list[chess.Board]) -> GameRecord:
    """A self-play game of ``boards`` with a uniform policy (the targets do not matter here)."""
    lengths = [board.legal_moves.count() for board in boards]
    indices = [i for board in boards for i in legal_moves_and_indices(board)[1]]
    return GameRecord(positions=np.array([encode_position(b) for b in boards], POSITION_DTYPE),
                      policy_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
                      policy_indices=np.array(indices, np.uint16), policy_probs=np.ones(len(indices), np.float16),
                      full_search=np.ones(len(boards), bool), values=np.zeros(len(boards), np.float16),
                      results=np.zeros(len(boards), np.int8))


def games_from_start(n: int, plies: int, seed: int) -> list[list[chess.Board]]:
    rng = np.random.default_rng(seed)
    games = []
    for _ in range(n):
        board, boards = chess.Board(), []
        while len(boards) < plies and not board.is_game_over():
            boards.append(board.copy(stack=False))
            moves = list(board.legal_moves)
            board.push(moves[int(rng.integers(len(moves)))])
        games.append(boards)
    return games


@pytest.fixture(scope="module")
def window() -> list[ReplayChunk]:
    """Two self-play chunks (every third game held out), a teacher chunk, one game from an ending and one from the
    opening a queen short."""
    ending = [chess.Board("8/8/4k3/8/8/3K4/4P3/8 w - - 0 1")]
    ending.append(ending[0].copy())
    ending[1].push_uci("e2e4")
    odds = [odds_board(np.random.default_rng(0), "Q")]
    odds.append(odds[0].copy())
    odds[1].push_uci("e2e4")
    return [ReplayChunk.from_games("000001-0000aaaa", [record_of(g) for g in games_from_start(12, 30, 1)], 3),
            ReplayChunk.from_games("000002-warm-0000bbbb", [record_of(g) for g in games_from_start(6, 30, 2)], 3),
            ReplayChunk.from_games("000002-0000cccc", [record_of(g) for g in games_from_start(9, 30, 3)]
                                   + [record_of(ending), record_of(odds)], 3)]


def keys(positions: np.ndarray) -> list[bytes]:
    return [p.tobytes() for p in positions]


def test_the_draw_is_uniform_over_self_plays_training_positions_seeded_and_by_game(window):
    selfplay = {c.name: c for c in window if not is_teacher(c.name)}
    train = {(c.name, int(i)) for c in selfplay.values() for i in np.flatnonzero(c.position_mask(False))}

    def where(games: list[HubGame]) -> list[tuple[str, int]]:
        for g in games:  # each game's positions are its chunk's rows, in one game of it
            chunk = selfplay[g.chunk]
            assert keys(g.positions) == keys(chunk.positions[g.rows])
            assert len(set(np.searchsorted(chunk.game_offsets, g.rows, side="right"))) == 1
        return [(g.chunk, int(i)) for g in games for i in g.rows]

    draw = sample_hub_games(window, 200, np.random.default_rng(7))
    assert where(draw) == where(sample_hub_games(window, 200, np.random.default_rng(7)))
    assert where(draw) != where(sample_hub_games(window, 200, np.random.default_rng(8)))
    drawn = where(draw)
    assert len(drawn) == len(set(drawn)) == 200 < len(train) and set(drawn) <= train  # no teacher, no held-out row
    every = sample_hub_games(window, 10**6, np.random.default_rng(0))
    assert sorted(where(every)) == sorted(train)  # up to n: all of them when the window holds fewer
    # Uniform: over many seeds each training position is drawn about 200/len(train) of the time.
    counts: dict[tuple[str, int], int] = {}
    for seed in range(200):
        for k in where(sample_hub_games(window, 200, np.random.default_rng(seed))):
            counts[k] = counts.get(k, 0) + 1
    share = np.array([counts.get(k, 0) for k in train]) / 200
    assert abs(share.mean() - 200 / len(train)) < 0.01 and share.min() > 0.25 and share.max() < 0.75
    # In the order played: a game from the initial position (a piece short or not) counts its plies from 0, one
    # from an ending from 64.
    assert all(np.all(np.diff(g.plies) > 0) for g in every)
    assert [g.plies.tolist() for g in every if g.plies[0] >= labels.MODEL_PLY] == [[64, 65]]
    firsts = [decode_position(g.positions[0]) for g in every if g.plies[0] == 0]
    assert sum(len(b.piece_map()) == 31 for b in firsts) == 1  # the odds game
    assert all(b.board_fen() == chess.STARTING_BOARD_FEN for b in firsts if len(b.piece_map()) == 32)


class PlyTeacher(ScriptedTeacher):
    """The scripted teacher, noting the game ply of each board it is asked about."""

    def __init__(self) -> None:
        super().__init__(cp=0, wdl=chess.engine.Wdl(600, 300, 100))
        self.plies: list[int] = []

    def analyse(self, board, limit, multipv=1):
        self.plies.append(board.ply())
        return super().analyse(board, limit, multipv)


def test_hub_positions_are_labelled_as_the_teachers_games_keep_their_records_and_skip_the_game_over(monkeypatch):
    teacher = PlyTeacher()
    monkeypatch.setattr(labels, "open_teacher", lambda path: teacher)
    boards = games_from_start(1, 12, 4)[0]
    mate = chess.Board("7k/6Q1/6K1/8/8/8/8/8 b - - 0 1")  # Black is mated: nothing to analyse
    rep = chess.Board()
    for uci in ("g1f3", "g8f6", "f3g1", "f6g8"):
        rep.push_uci(uci)  # the initial position again: its record carries the repetition flag
    positions = np.array([encode_position(b) for b in boards + [mate, rep]], POSITION_DTYPE)
    assert int(positions[-1]["flags"]) & REPETITION
    game = HubGame(positions, np.arange(len(positions), dtype=np.int64))
    records, skipped = label_hub_games("scripted", [game], chess.engine.Limit(nodes=1), 3, float("inf"), 0)
    assert skipped == 1 and len(records) == 1
    record = records[0]
    kept = np.concatenate([positions[:12], positions[13:]])
    assert keys(record.positions) == keys(kept)  # the window's own records, repetition flag and all
    # White's (600, 300, 100) is the value of whichever side is to move on the decoded board: White.
    assert np.allclose(record.values.astype(np.float32), 0.5, atol=1e-3)
    sums = np.add.reduceat(record.policy_probs.astype(np.float32), record.policy_offsets[:-1])
    assert np.allclose(sums, 1.0, atol=2e-3) and record.full_search.all()
    for i, board in enumerate(boards):  # the indices are the real position's legal moves, in its own frame
        got = record.policy_indices[record.policy_offsets[i]:record.policy_offsets[i + 1]]
        assert sorted(got.tolist()) == sorted(legal_moves_and_indices(board)[1])
    assert teacher.plies == [p - p % 2 for p in range(12)] + [12]  # the ply on a White-to-move board: even
    assert label_hub_games("scripted", [game], chess.engine.Limit(nodes=1), 1, float("inf"), 0,
                           should_stop=lambda: True) == ([], 0)


# -- end to end ------------------------------------------------------------------------------------
def titles(hub_dir) -> list[str]:
    return [c.message.splitlines()[0] for c in reversed(LocalHub(hub_dir).history())] if hub_dir.exists() else []


def window_of(hub: LocalHub, commit: str) -> list[ReplayChunk]:
    state = TrainingState.load(hub.download(STATE_FILE, commit))
    return [ReplayChunk.load(hub.download(replay_file(name), commit)) for name in state.replay_chunks]


@needs_stockfish
def test_a_warm_start_labels_the_hubs_own_self_play_positions(tmp_path, monkeypatch, capsys):
    hub_dir = tmp_path / "hub"
    ok(run_here(["train", "--hub", str(hub_dir), "--cycles", "1", "--games", "4", "--steps", "3", *FAST],
                tmp_path, monkeypatch, capsys))
    hub = LocalHub(hub_dir)
    (selfplay,) = window_of(hub, hub.head())
    train = selfplay.position_mask(False)
    assert train.sum() > 50
    out = ok(run_here(["pretrain", "--hub", str(hub_dir), "--hub-positions", "50", "--nodes", "50", *TINY],
                      tmp_path, monkeypatch, capsys))
    assert "50 positions of" in out and "drawn from the" in out
    assert titles(hub_dir)[-1].startswith("Warm start: 50 positions from the hub's self-play labelled by stockfish")
    chunks = window_of(hub, hub.head())
    assert [c.name for c in chunks if not c.teacher] == [selfplay.name]  # the self-play window stays
    (warm,) = [c for c in chunks if c.teacher]
    # The warm chunk's positions are the hub's: 50 distinct training positions of its self-play chunk.
    hub_rows = {}
    for i in np.flatnonzero(train):
        hub_rows.setdefault(selfplay.positions[i].tobytes(), []).append(i)
    assert len(warm) == 50 and all(p.tobytes() in hub_rows for p in warm.positions)
    held_out = {p.tobytes() for p in selfplay.positions[~train]} - set(hub_rows)
    assert not held_out & {p.tobytes() for p in warm.positions}
    # Labelled by the teacher: W - L values, policies over each position's legal moves summing to 1.
    values = warm.values.astype(np.float32)
    assert np.all(np.abs(values) <= 1) and len(np.unique(values)) > 5 and warm.full_search.all()
    for i, rec in enumerate(warm.positions):
        board = decode_position(rec)
        got = warm.policy_indices[warm.policy_offsets[i]:warm.policy_offsets[i + 1]]
        probs = warm.policy_probs[warm.policy_offsets[i]:warm.policy_offsets[i + 1]].astype(np.float32)
        assert sorted(got.tolist()) == sorted(legal_moves_and_indices(board)[1])
        assert probs.sum() == pytest.approx(1.0, abs=2e-3)


def test_hub_positions_without_a_self_play_window_is_one_line_and_commits_nothing(tmp_path, monkeypatch, capsys):
    hub_dir = tmp_path / "hub"

    def error(*args: str) -> str:
        return one_line_error(run_here(["pretrain", "--hub", str(hub_dir), "--hub-positions", "50", *args, *TINY],
                                       tmp_path, monkeypatch, capsys))

    assert "holds no self-play positions" in error() and titles(hub_dir) == []  # not even the initial commit
    assert "--positions" in error("--positions", "10")
    games = tmp_path / "games.pgn"
    games.write_text(GAMES * 30)
    assert "drop --pgn" in error("--pgn", str(games))
    # A hub whose window holds only a warm start's teacher chunk: refused after the start, nothing committed.
    ok(run_here(["pretrain", "--hub", str(hub_dir), "--pgn", str(games), "--positions", "300", *TINY],
                tmp_path, monkeypatch, capsys))
    before = titles(hub_dir)
    if any(os.access(p, os.X_OK) for p in labels.STOCKFISH_PATHS):
        assert "holds no self-play positions" in error()
    assert titles(hub_dir) == before
