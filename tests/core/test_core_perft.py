"""Perft of the compiled move generator against the published counts.

The standard positions of the chessprogramming wiki's perft page to depth 5
(6 and 7 where it takes a second or two), and a suite of positions built to
catch the classic bugs (en passant pins, castling through check, promotions
out of check, stalemates).
"""

import chess
import pytest

from l4demons import core

from core_support import require_core

START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
KIWIPETE = "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1"
POSITION_3 = "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1"
POSITION_4 = "r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1"
POSITION_4_MIRRORED = "r2q1rk1/pP1p2pp/Q4n2/bbp1p3/Np6/1B3NBn/pPPP1PPP/R3K2R b KQ - 0 1"
POSITION_5 = "rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8"
POSITION_6 = "r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10"

PUBLISHED = [
    (START, [20, 400, 8902, 197281, 4865609, 119060324]),
    (KIWIPETE, [48, 2039, 97862, 4085603, 193690690]),
    (POSITION_3, [14, 191, 2812, 43238, 674624, 11030083, 178633661]),
    (POSITION_4, [6, 264, 9467, 422333, 15833292]),
    (POSITION_4_MIRRORED, [6, 264, 9467, 422333, 15833292]),
    (POSITION_5, [44, 1486, 62379, 2103487, 89941194]),
    (POSITION_6, [46, 2079, 89890, 3894594, 164075551]),
]

EDGE_CASES = [  # (fen, depth, nodes)
    ("8/8/1k6/2b5/2pP4/8/5K2/8 b - d3 0 1", 6, 1440467),  # en passant would expose the king
    ("8/8/4k3/8/2p5/8/B2P2K1/8 w - - 0 1", 6, 1015133),
    ("8/5k2/8/2Pp4/2B5/1K6/8/8 w - d6 0 1", 6, 1440467),  # en passant gives check
    ("5k2/8/8/8/8/8/8/4K2R w K - 0 1", 6, 661072),  # castling gives check
    ("3k4/8/8/8/8/8/8/R3K3 w Q - 0 1", 6, 803711),
    ("r3k2r/1b4bq/8/8/8/8/7B/R3K2R w KQkq - 0 1", 4, 1274206),  # castling rights lost
    ("r3k2r/8/3Q4/8/8/5q2/8/R3K2R b KQkq - 0 1", 4, 1720476),  # castling prevented
    ("2K2r2/4P3/8/8/8/8/8/3k4 w - - 0 1", 6, 3821001),  # promotion out of check
    ("8/8/1P2K3/8/2n5/1q6/8/5k2 b - - 0 1", 5, 1004658),  # discovered check
    ("4k3/1P6/8/8/8/8/K7/8 w - - 0 1", 6, 217342),  # promotion gives check
    ("8/P1k5/K7/8/8/8/8/8 w - - 0 1", 6, 92683),  # under-promotion gives check
    ("K1k5/8/P7/8/8/8/8/8 w - - 0 1", 6, 2217),  # self stalemate
    ("8/k1P5/8/1K6/8/8/8/8 w - - 0 1", 7, 567584),  # stalemate and checkmate
    ("8/8/2k5/5q2/5n2/8/5K2/8 b - - 0 1", 4, 23527),
]


def perft(fen: str, depth: int) -> int:
    require_core()
    return core.position(chess.Board(fen)).perft(depth)


@pytest.mark.parametrize("fen,counts", PUBLISHED, ids=["start", "kiwipete", "pos3", "pos4", "pos4-mirrored", "pos5", "pos6"])
def test_perft_of_the_standard_positions_to_depth_five_and_beyond(fen: str, counts: list[int]) -> None:
    for depth, nodes in enumerate(counts, start=1):
        assert perft(fen, depth) == nodes, f"perft({depth}) of {fen}"


@pytest.mark.parametrize("fen,depth,nodes", EDGE_CASES)
def test_perft_of_the_edge_cases(fen: str, depth: int, nodes: int) -> None:
    assert perft(fen, depth) == nodes


def test_moves_played_from_a_fen_match_python_chess() -> None:
    """A position given by FEN plus moves: the core replays them and keeps the history."""
    require_core()
    board = chess.Board(KIWIPETE)
    for uci in ["e1g1", "h3g2", "a2a4", "b4a3", "d5e6"]:
        board.push_uci(uci)
    pos = core.position(board)
    assert [core.code_move(c) for c in pos.legal_moves()] == list(board.legal_moves)
    with pytest.raises(ValueError, match="illegal"):
        pos.push(core.move_code(chess.Move.from_uci("e1g1")))
