import random

import chess
import numpy as np
import pytest

from l4demons.encoding import (
    NUM_PLANES,
    POLICY_SIZE,
    board_to_planes,
    encode_position,
    index_to_move,
    legal_moves_and_indices,
    move_to_index,
)

SPECIAL_FENS = [
    "r3k2r/pppppppp/8/8/8/8/PPPPPPPP/R3K2R w KQkq - 0 1",  # castling both sides
    "r3k2r/pppppppp/8/8/8/8/PPPPPPPP/R3K2R b KQkq - 0 1",
    "8/P1P4k/8/8/8/8/1p4pK/8 w - - 0 1",  # promotions with captures
    "8/P1P4k/8/8/8/8/1p4pK/8 b - - 0 1",
    "4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 2",  # en passant
    "4k3/8/8/8/3Pp3/8/8/4K3 b - d3 0 2",
    "6k1/8/8/8/8/8/8/4K2R w K - 99 80",  # near the fifty-move rule
]


def random_positions(n_games: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n_games):
        board = chess.Board()
        while not board.is_game_over() and board.ply() < 160:
            yield board
            board.push(rng.choice(list(board.generate_legal_moves())))


def check_round_trip(board: chess.Board) -> None:
    moves, indices = legal_moves_and_indices(board)
    assert len(set(indices)) == len(indices), "two legal moves share a policy index"
    assert all(0 <= i < POLICY_SIZE for i in indices)
    for move, index in zip(moves, indices):
        assert move_to_index(move, board.turn) == index
        assert index_to_move(index, board) == move


def test_every_legal_move_has_a_distinct_index_and_maps_back():
    count = 0
    for board in random_positions(60, seed=1):
        check_round_trip(board)
        count += 1
    assert count > 3000


def test_an_index_without_a_legal_move_is_refused():
    board = chess.Board()
    legal = set(legal_moves_and_indices(board)[1])
    e2e5 = move_to_index(chess.Move.from_uci("e2e5"), chess.WHITE)  # a rook's move, not a pawn's
    for index in (e2e5, -1, POLICY_SIZE, next(i for i in range(POLICY_SIZE) if i not in legal)):
        with pytest.raises(ValueError):
            index_to_move(index, board)


@pytest.mark.parametrize("fen", SPECIAL_FENS)
def test_promotions_castling_en_passant_round_trip(fen):
    board = chess.Board(fen)
    check_round_trip(board)
    moves, _ = legal_moves_and_indices(board)
    assert moves, fen


def test_underpromotions_get_their_own_indices():
    board = chess.Board("8/P6k/8/8/8/8/7K/8 w - - 0 1")
    idx = {m.promotion: i for m, i in zip(*legal_moves_and_indices(board)) if m.from_square == chess.A7}
    assert set(idx) == {chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT}
    assert len(set(idx.values())) == 4


def test_encoding_is_from_the_side_to_move():
    """A position and its colour-mirrored twin look identical to the network."""
    for played in random_positions(10, seed=2):
        board = chess.Board(played.fen())  # no history: mirror() does not carry repetitions
        a, b = encode_position(board), encode_position(board.mirror())
        assert a.tobytes() == b.tobytes(), board.fen()
        assert sorted(legal_moves_and_indices(board)[1]) == sorted(legal_moves_and_indices(board.mirror())[1])


def test_planes_show_pieces_castling_en_passant_and_rule50():
    planes = board_to_planes(chess.Board())
    assert planes.shape == (NUM_PLANES, 8, 8)
    assert planes[0, 1].sum() == 8 and planes[0].sum() == 8  # own pawns on rank 2
    assert planes[11, 7, 4] == 1  # opponent king on e8
    assert planes[14:18].min() == 1  # all castling rights
    assert planes[12].sum() == 0
    ep = board_to_planes(chess.Board("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 2"))
    assert ep[12, 5, 3] == 1  # d6
    black_ep = board_to_planes(chess.Board("4k3/8/8/8/3Pp3/8/8/4K3 b - d3 0 2"))
    assert black_ep[12, 5, 3] == 1  # d3 seen from Black is "d6"
    late = board_to_planes(chess.Board("6k1/8/8/8/8/8/8/4K2R w K - 50 80"))
    assert np.allclose(late[18], 0.5)


def test_repetition_plane():
    board = chess.Board()
    for uci in ["g1f3", "g8f6", "f3g1", "f6g8"]:
        board.push_uci(uci)
    assert board_to_planes(board)[13].min() == 1
    assert board_to_planes(chess.Board())[13].max() == 0


def test_the_board_and_the_record_count_material_alike():
    from l4demons.encoding import encode_positions, material_balance, material_lead

    boards = [chess.Board("4k3/8/8/8/8/8/8/QR2K3 w - - 0 1"),      # White a queen and a rook up
              chess.Board("4k3/8/8/8/8/8/8/QR2K3 b - - 0 1"),      # the same, Black to move
              chess.Board("rnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBN1 w - - 0 1")]  # Black down a queen
    assert [material_balance(b) for b in boards] == [14, 14, 4]
    assert [material_balance(b, chess.BLACK) for b in boards] == [-14, -14, -4]
    to_move = [material_balance(b, b.turn) for b in boards]
    assert material_lead(encode_positions(boards)).tolist() == to_move == [14, -14, 4]
