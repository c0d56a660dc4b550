"""The lichess-bot adapter, with a stand-in for lichess-bot's MinimalEngine (lichess-bot is not on PyPI)."""

from __future__ import annotations

import sys
import time
import types

import chess
import chess.engine
import pytest

from l4demons import lichess
from l4demons.bot import Bot, TimePolicy
from l4demons.lichess import LichessOptions, LichessPlayer

from serve_support import TINY, tiny_hub  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def player() -> LichessPlayer:
    bot = Bot.random(TINY, seed=6)
    bot.warmup()
    return LichessPlayer(bot)


def test_options_from_config_yml() -> None:
    opts = LichessOptions.from_mapping({"hub": "hf://me/L4Demons", "threads": "2", "allow_random": "true",
                                        "go_commands": {"nodes": 5}, "device": None})
    assert opts == LichessOptions(hub="hf://me/L4Demons", threads=2, allow_random=True)


def test_search_honours_root_moves(player: LichessPlayer) -> None:
    allowed = [chess.Move.from_uci("a2a3"), chess.Move.from_uci("h2h3")]
    limit = chess.engine.Limit(white_clock=10.0, black_clock=10.0, white_inc=0.0, black_inc=0.0)
    for _ in range(3):
        assert player.search(chess.Board(), limit, allowed) in allowed


def test_search_ignores_a_non_list_root_moves(player: LichessPlayer) -> None:
    move = player.search(chess.Board(), chess.engine.Limit(time=0.05), chess.engine.PlayResult(None, None))
    assert move in chess.Board().legal_moves


@pytest.mark.parametrize("side", [chess.WHITE, chess.BLACK])
def test_search_budget_comes_from_its_own_clock(player: LichessPlayer, side: chess.Color) -> None:
    board = chess.Board()
    if side == chess.BLACK:
        board.push_san("e4")
    mine, theirs = 3.0, 600.0  # seconds: a budget from the opponent's clock would be far longer
    limit = chess.engine.Limit(white_clock=mine if side == chess.WHITE else theirs,
                               black_clock=mine if side == chess.BLACK else theirs, white_inc=0, black_inc=0)
    t0 = time.perf_counter()
    move = player.search(board, limit, None)
    took_ms = (time.perf_counter() - t0) * 1000
    assert move in board.legal_moves
    assert TimePolicy().budget_ms(theirs * 1000) > 19_000  # what the opponent's clock would have given
    assert took_ms < 2000, f"{took_ms:.0f} ms for a {TimePolicy().budget_ms(mine * 1000):.0f} ms budget"


def fake_lichess_bot(monkeypatch: pytest.MonkeyPatch) -> type:
    """Install a module ``lib.engine_wrapper`` with a MinimalEngine shaped like lichess-bot's."""

    class MinimalEngine:
        def __init__(self, commands, options, stderr, draw_or_resign, game=None, name=None, **popen_args):  # noqa: ANN001
            self.go_commands = options.pop("go_commands", None)  # lichess-bot pops its own keys
            self.engine_name = name or type(self).__name__

    lib = types.ModuleType("lib")
    wrapper = types.ModuleType("lib.engine_wrapper")
    wrapper.MinimalEngine = MinimalEngine
    lib.engine_wrapper = wrapper
    monkeypatch.setitem(sys.modules, "lib", lib)
    monkeypatch.setitem(sys.modules, "lib.engine_wrapper", wrapper)
    return MinimalEngine


def test_engine_class_plugs_into_lichess_bot(monkeypatch: pytest.MonkeyPatch, tiny_hub) -> None:  # noqa: ANN001
    base = fake_lichess_bot(monkeypatch)
    cls = lichess._build_engine_class()
    assert issubclass(cls, base) and cls.__name__ == "L4DemonsEngine"
    options = {"hub": str(tiny_hub.path), "file": "model_best.pt", "device": "cpu", "go_commands": {}}
    engine = cls(["unused"], options, None, None)
    board = chess.Board()
    result = engine.search(board, chess.engine.Limit(white_clock=5.0, black_clock=5.0), False, False, [])
    assert isinstance(result, chess.engine.PlayResult) and result.ponder is None
    assert result.move in board.legal_moves
    again = cls(["unused"], dict(options), None, None)
    assert again.player.bot is engine.player.bot  # loaded once per process


def test_without_lichess_bot_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lib", None)
    monkeypatch.setitem(sys.modules, "lib.engine_wrapper", None)
    monkeypatch.setitem(sys.modules, "engine_wrapper", None)
    with pytest.raises(ImportError, match="lichess-bot's MinimalEngine"):
        lichess._build_engine_class()
    assert lichess.LichessPlayer  # the module itself works without lichess-bot
