"""The lichess-bot adapter, with a stand-in for lichess-bot's MinimalEngine (lichess-bot is not on PyPI).

The stand-in keeps what lichess-bot does with a homemade engine's answer
(lichess-bot-devs/lichess-bot, lib/engine_wrapper.py at bedd1d9, 2026-08):
``EngineWrapper.__init__`` starts ``scores`` empty and keeps the
``draw_or_resign`` config; ``EngineWrapper.search`` appends each
``PlayResult.info["score"]`` to ``scores`` and returns
``offer_draw_or_resign(result, board)``, which reads each score as
``score.relative.score(mate_score=40000)`` and sets ``draw_offered`` when the
last ``offer_draw_moves`` are all within ``offer_draw_score`` of 0 with at
most ``offer_draw_pieces`` pieces on the board, ``resigned`` when the last
``resign_moves`` are all at or below ``resign_score``. ``play_move`` then
resigns or sends the move with ``offeringDraw``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import chess
import chess.engine
import pytest

from l4demons import lichess
from l4demons.bot import Bot
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
def test_search_budget_comes_from_its_own_clock(player: LichessPlayer, side: chess.Color, monkeypatch) -> None:
    board = chess.Board()
    if side == chess.BLACK:
        board.push_san("e4")
    mine, theirs = 3.0, 600.0  # seconds: a budget from the opponent's clock would be far longer
    limit = chess.engine.Limit(white_clock=mine if side == chess.WHITE else theirs,
                               black_clock=mine if side == chess.BLACK else theirs, white_inc=0, black_inc=0)
    asked: list[float] = []
    real = player.bot.choose_move

    def recorded(board, time_left_ms=None, **kw):  # noqa: ANN001, ANN202
        asked.append(time_left_ms)
        return real(board, nodes=8, on_info=kw["on_info"], wdl=kw["wdl"])

    monkeypatch.setattr(player.bot, "choose_move", recorded)
    move = player.search(board, limit, None)
    assert move in board.legal_moves
    assert asked == [mine * 1000]  # its own clock, in milliseconds, not the opponent's


def draw_or_resign(**changes: Any) -> types.SimpleNamespace:
    """config.yml's ``engine.draw_or_resign``: lichess-bot's defaults (lib/config.py), both rules off."""
    cfg = dict(resign_enabled=False, resign_score=-1000, resign_moves=3, offer_draw_enabled=False,
               offer_draw_score=0, offer_draw_moves=5, offer_draw_pieces=10)
    return types.SimpleNamespace(**(cfg | changes))


def fake_lichess_bot(monkeypatch: pytest.MonkeyPatch) -> type:
    """Install a module ``lib.engine_wrapper`` with a MinimalEngine shaped like lichess-bot's (see above)."""

    class MinimalEngine:
        def __init__(self, commands, options, stderr, draw_or_resign, game=None, name=None, **popen_args):  # noqa: ANN001
            self.go_commands = options.pop("go_commands", None)  # lichess-bot pops its own keys
            self.engine_name = name or type(self).__name__
            self.scores: list[chess.engine.PovScore] = []
            self.draw_or_resign = draw_or_resign

        def offer_draw_or_resign(self, result: chess.engine.PlayResult, board: chess.Board) -> chess.engine.PlayResult:
            cfg = self.draw_or_resign
            cp = [score.relative.score(mate_score=40000) for score in self.scores]
            near_draw = cp[-cfg.offer_draw_moves:]
            if (cfg.offer_draw_enabled and len(cp) >= cfg.offer_draw_moves
                    and chess.popcount(board.occupied) <= cfg.offer_draw_pieces
                    and all(abs(x) <= cfg.offer_draw_score for x in near_draw)):
                result.draw_offered = True
            if (cfg.resign_enabled and len(cp) >= cfg.resign_moves
                    and all(x <= cfg.resign_score for x in cp[-cfg.resign_moves:])):
                result.resigned = True
            return result

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
    engine = cls(["unused"], options, None, draw_or_resign())
    board = chess.Board()
    result = engine.search(board, chess.engine.Limit(white_clock=5.0, black_clock=5.0), False, False, [])
    assert isinstance(result, chess.engine.PlayResult) and result.ponder is None
    assert result.move in board.legal_moves
    assert not result.draw_offered and not result.resigned
    again = cls(["unused"], dict(options), None, draw_or_resign())
    assert again.player.bot is engine.player.bot  # loaded once per process


LOST = "7k/1p6/6K1/8/8/8/8/R7 b - - 0 1"
"""Black to move; every move allows Ra8#, so 4000 visits back up a value near -1 (below -1000 cp)."""
DRAWN = "7k/8/4K3/8/8/8/8/R7 b - - 99 120"
"""Black to move at 99 half-moves; every Black move is a king move that reaches the 50-move draw."""


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, player: LichessPlayer) -> Any:
    """The engine class under the stand-in lichess-bot, its player the module's bot (no hub)."""
    fake_lichess_bot(monkeypatch)
    cls = lichess._build_engine_class()
    monkeypatch.setattr(LichessPlayer, "from_options", classmethod(lambda c, options: player))
    return cls


def test_search_returns_the_score_and_wdl(engine: Any) -> None:
    bot = engine(["unused"], {}, None, draw_or_resign())
    for fen in (chess.STARTING_FEN, LOST):
        board = chess.Board(fen)
        result = bot.search(board, chess.engine.Limit(nodes=4000), False, False, None)
        score, wdl = result.info["score"], result.info["wdl"]
        assert isinstance(score, chess.engine.PovScore) and score.turn == board.turn
        assert isinstance(wdl, chess.engine.PovWdl) and wdl.relative.total() == 1000
        assert (wdl.relative.wins - wdl.relative.losses) * score.relative.score() >= 0
        assert result.move in board.legal_moves and result.info["nodes"] > 0
        board.variation_san(result.info["pv"])  # lichess-bot's add_comment writes the PV out in SAN
    assert bot.scores[-1].relative.score() < -1000 and wdl.relative.losses > wdl.relative.wins  # LOST, Black's view
    assert len(bot.scores) == 2  # recorded where lichess-bot's EngineWrapper.search records them


def test_lichess_bot_resigns_a_lost_position(engine: Any) -> None:
    bot = engine(["unused"], {}, None, draw_or_resign(resign_enabled=True))
    board = chess.Board(LOST)
    answers = [bot.search(board, chess.engine.Limit(nodes=4000), False, False, None) for _ in range(3)]
    assert [r.resigned for r in answers] == [False, False, True]  # three scores in a row at or below -1000 cp
    assert not any(r.draw_offered for r in answers)


def test_lichess_bot_offers_a_draw_in_a_drawn_position(engine: Any) -> None:
    bot = engine(["unused"], {}, None, draw_or_resign(offer_draw_enabled=True, resign_enabled=True))
    board = chess.Board(DRAWN)
    answers = [bot.search(board, chess.engine.Limit(nodes=400), False, False, None) for _ in range(5)]
    assert all(r.info["score"].relative.score() == 0 for r in answers)
    assert [r.draw_offered for r in answers] == [False] * 4 + [True]  # five scores in a row within 0 cp
    assert not any(r.resigned for r in answers)


def test_without_lichess_bot_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lib", None)
    monkeypatch.setitem(sys.modules, "lib.engine_wrapper", None)
    monkeypatch.setitem(sys.modules, "engine_wrapper", None)
    with pytest.raises(ImportError, match="lichess-bot's MinimalEngine"):
        lichess._build_engine_class()
    assert lichess.LichessPlayer  # the module itself works without lichess-bot
