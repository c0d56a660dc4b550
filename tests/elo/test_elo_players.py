"""Players: legal moves always, greed where expected, specs that travel, Stockfish found."""

from __future__ import annotations

import pickle
import random

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l4demons.elo import engines
from l4demons.elo.engines import find_stockfish, stockfish_level, stockfish_player
from l4demons.elo.errors import StockfishNotFound, UnknownPlayerKind
from l4demons.elo.players import MaterialGrabber, NoisyPlayer, PlayerSpec, RandomMover, build_player


def _stockfish_or_none() -> str | None:
    try:
        return find_stockfish()
    except StockfishNotFound:
        return None


needs_stockfish = pytest.mark.skipif(_stockfish_or_none() is None, reason="stockfish not installed")


def random_position(seed: int, plies: int) -> chess.Board:
    rng = random.Random(seed)
    board = chess.Board()
    for _ in range(plies):
        moves = list(board.legal_moves)
        if not moves:
            break
        board.push(rng.choice(moves))
    return board


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 120))
def test_simple_players_always_return_legal_moves(seed: int, plies: int) -> None:
    board = random_position(seed, plies)
    if board.is_game_over():
        return
    fen = board.fen()
    for player in (RandomMover(seed), MaterialGrabber(seed), NoisyPlayer(MaterialGrabber(seed), 0.5, seed)):
        move = player.choose(board)
        assert move in board.legal_moves
        assert board.fen() == fen  # left unchanged


def test_material_grabber_takes_a_hanging_queen() -> None:
    board = chess.Board("4k3/8/8/3q4/8/8/3R4/4K3 w - - 0 1")
    for seed in range(10):
        assert MaterialGrabber(seed).choose(board) == chess.Move.from_uci("d2d5")


def test_material_grabber_prefers_mate_to_material() -> None:
    # Qxh5 wins a rook, but Ra8 (or Qd8) mates on the back rank.
    board = chess.Board("6k1/5ppp/8/7r/8/8/8/R2Q2K1 w - - 0 1")
    assert board.is_capture(chess.Move.from_uci("d1h5"))
    for seed in range(10):
        board.push(MaterialGrabber(seed).choose(board))
        assert board.is_checkmate()
        board.pop()


def test_material_grabber_promotes_to_a_queen_and_avoids_stalemate() -> None:
    board = chess.Board("8/P7/8/8/8/8/8/k6K w - - 0 1")
    assert MaterialGrabber(0).choose(board) == chess.Move.from_uci("a7a8q")
    # Up a queen, it never plays the one stalemating move (Qb3).
    board = chess.Board("8/8/8/8/8/2Q5/8/k6K w - - 0 1")
    stalemate = chess.Move.from_uci("c3b3")
    assert all(MaterialGrabber(seed).choose(board) != stalemate for seed in range(30))


def test_seeded_players_repeat_their_games() -> None:
    board = random_position(3, 20)
    a, b = MaterialGrabber(5), MaterialGrabber(99)
    b.new_game(5)
    assert a.choose(board) == b.choose(board)


def test_player_spec_names_and_pickling() -> None:
    sf = PlayerSpec.stockfish(elo=1350)
    assert sf.name == "sf-elo1350"
    assert PlayerSpec.stockfish(skill=0, nodes=100).name == "sf-skill0@n100"
    assert sf.with_noise(0.25).name == "sf-elo1350~r0.25"
    assert PlayerSpec.material().with_noise(0.5).name == "material~r0.5"
    assert PlayerSpec.net("/runs/x/model.pt", nodes=64).name == "net:model.pt@64"
    assert PlayerSpec.random().name == "random"
    for spec in (sf, sf.with_noise(0.1), PlayerSpec.net("m.pt")):
        assert pickle.loads(pickle.dumps(spec)) == spec
        assert hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert PlayerSpec.make("material", label="greedy").name == "greedy"


def test_build_player_from_spec() -> None:
    noisy = build_player(PlayerSpec.material().with_noise(0.3), seed=1)
    assert isinstance(noisy, NoisyPlayer) and noisy.name == "material~r0.3"
    assert isinstance(build_player(PlayerSpec.random()), RandomMover)
    with pytest.raises(UnknownPlayerKind, match="unknown player kind"):
        build_player(PlayerSpec.make("carrier-pigeon"))
    with pytest.raises(ValueError):
        NoisyPlayer(RandomMover(), 1.5)


def test_find_stockfish_honours_flag_and_env_and_explains_absence(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "sf"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_stockfish(fake) == str(fake)
    monkeypatch.setenv("L4D_STOCKFISH", str(fake))
    assert find_stockfish() == str(fake)
    monkeypatch.delenv("L4D_STOCKFISH")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(engines, "DEBIAN_STOCKFISH", str(tmp_path / "nope"))
    with pytest.raises(StockfishNotFound, match="apt-get install stockfish"):
        find_stockfish()


def test_stockfish_level_matches_its_pick_depth() -> None:
    assert int(stockfish_level(elo=1350)) == 0  # picks at depth 1
    assert 1 <= stockfish_level(elo=1500) < 2
    assert 18 < stockfish_level(elo=2850) < 19
    assert stockfish_level(skill=5) == 5.0


@needs_stockfish
def test_stockfish_plays_legal_moves_through_chess_engine() -> None:
    player = stockfish_player(elo=1350)
    try:
        assert player.limit.depth == 1
        for seed in range(3):
            board = random_position(seed, 10)
            player.new_game(seed)
            assert player.choose(board) in board.legal_moves
            assert player.last_nodes is not None and player.last_nodes > 0
    finally:
        player.close()


def test_net_player_adapter_plays_through_the_bot(tmp_path) -> None:
    network = pytest.importorskip("l4demons.network")
    pytest.importorskip("l4demons.bot")
    cfg = network.NetConfig.from_name("tiny")
    path = tmp_path / "model.pt"
    network.save_weights(network.build_network(cfg, seed=0), cfg, path)
    player = build_player(PlayerSpec.net(path, nodes=4))
    try:
        assert player.name == "net:model.pt@4"
        board = random_position(1, 6)
        assert player.last_nodes is None
        assert player.choose(board) in board.legal_moves
        assert player.last_nodes is not None and player.last_nodes >= 1
    finally:
        player.close()
    timed = build_player(PlayerSpec.net(path, nodes=None, time=0.05))
    try:
        assert timed.name == "net:model.pt@0.05s"
        assert timed.choose(board) in board.legal_moves
    finally:
        timed.close()


def test_a_net_spec_carries_search_settings_to_the_bot_it_builds(tmp_path) -> None:
    network = pytest.importorskip("l4demons.network")
    cfg = network.NetConfig.from_name("tiny")
    path = tmp_path / "model.pt"
    network.save_weights(network.build_network(cfg, seed=0), cfg, path)
    spec = PlayerSpec.net(path, nodes=4, label="c1", c_puct=1.0, batch_size=4, reuse_tree=False)
    assert spec.name == "c1" and pickle.loads(pickle.dumps(spec)) == spec
    player = build_player(spec)
    try:
        bot = player._bot
        assert (bot.puct.c_puct, bot.puct.batch_size, bot.puct.fpu_reduction, bot.reuse_tree) == (1.0, 4, 0.3, False)
    finally:
        player.close()
    default = build_player(PlayerSpec.net(path, nodes=4))
    try:
        assert default._bot.reuse_tree and default._bot.puct.c_puct == 1.75
    finally:
        default.close()
    with pytest.raises(ValueError, match="unknown search setting"):
        PlayerSpec.net(path, cpuct=1.0)
