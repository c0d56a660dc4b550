"""The bot as a lichess-bot ``homemade`` engine.

lichess-bot (https://github.com/lichess-bot-devs/lichess-bot) runs a class
from its ``homemade.py``; that class subclasses lichess-bot's own
``MinimalEngine`` and implements ``search(board, time_limit, ponder,
draw_offered, root_moves) -> PlayResult``. lichess-bot is not a package on
PyPI, so this module imports ``MinimalEngine`` only when
:data:`L4DemonsEngine` is first used, from lichess-bot's folder (which must
be on ``sys.path``, as it is when lichess-bot runs).

Plugging it in (lichess-bot checkout, with l4demons installed in its venv):

1. ``pip install -e /path/to/l4demons`` (or ``pip install l4demons``) in
   lichess-bot's environment.
2. Append to lichess-bot's ``homemade.py``::

       from l4demons.lichess import L4DemonsEngine  # noqa: F401

3. In ``config.yml``::

       engine:
         protocol: "homemade"
         name: "L4DemonsEngine"
         homemade_options:
           hub: "hf://me/L4Demons"     # default: $L4D_HUB, else the local hub
           file: "model_best.pt"       # or model.pt, or a local .pt file
           device: "auto"              # auto | cpu | cuda
           threads: 0                  # torch CPU threads, 0: torch's default
           move_overhead: 50           # ms kept back per move
           allow_random: false         # play an untrained net when no weights exist

The weights are resolved as ``serve.py`` does (hub, then the offline cache)
and loaded once per process, then shared by every game. ``root_moves``
(tablebase or book suggestions) restricts the search; the clock in
``time_limit`` (seconds) sets the budget, exactly as for HTTP and UCI.

The move comes back with the search's score: ``PlayResult.info`` holds
``score`` (a ``PovScore`` in centipawns, the UCI door's ``score cp``),
``wdl`` (a ``PovWdl``, as :mod:`l4demons.uci`'s ``UCI_ShowWDL`` reports it),
``depth``, ``nodes``, ``nps``, ``time`` and ``pv``, which lichess-bot shows
in its logs and chat. A homemade engine's ``search`` takes the place of
lichess-bot's ``EngineWrapper.search``, and that is where lichess-bot
records each score (``self.scores``) and decides on draw offers and
resignation (``offer_draw_or_resign``); so ``search`` here does both, as
that method does after its engine's ``play``, and ``draw_or_resign`` in
config.yml works for this engine as for a UCI one.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

import chess

from l4demons.uci_protocol import score_cp, wdl_permille

if TYPE_CHECKING:
    from l4demons.bot import Bot, SearchInfo

_BOTS: dict[tuple, Bot] = {}
_BOTS_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class LichessOptions:
    """``homemade_options`` of lichess-bot's config.yml."""

    hub: str | None = None
    file: str = "model_best.pt"
    device: str = "auto"
    threads: int = 0
    move_overhead: int = 50
    """Milliseconds kept back per move."""
    allow_random: bool = False

    @classmethod
    def from_mapping(cls, options: dict[str, Any] | None) -> LichessOptions:
        """The fields this class knows, from lichess-bot's option dict; other keys are lichess-bot's own.

        :raises ValueError: a value of the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in (options or {}).items():
            if key not in known or value is None:
                continue
            if key in ("threads", "move_overhead"):
                value = int(value)
            elif key == "allow_random":
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            else:
                value = str(value)
            values[key] = value
        return cls(**values)


class LichessPlayer:
    """What ``search`` does, apart from lichess-bot (tested without it)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @classmethod
    def from_options(cls, options: LichessOptions) -> LichessPlayer:
        """Load (once per process and option set) the weights the options name.

        :raises l4demons.server.weights.NoWeightsError: none anywhere and allow_random is off.
        """
        key = (options.hub, options.file, options.device, options.threads, options.allow_random)
        with _BOTS_LOCK:
            bot = _BOTS.get(key)
            if bot is None:
                from l4demons.server.model_store import load_bot
                from l4demons.server.settings import ServeSettings

                settings = ServeSettings(hub=options.hub, file=options.file, device=options.device,
                                         allow_random=options.allow_random, threads=options.threads or None)
                bot, _ = load_bot(settings)
                _BOTS[key] = bot
        bot.time_policy = dataclasses.replace(bot.time_policy, safety_ms=float(options.move_overhead))
        return cls(bot)

    def search(self, board: chess.Board, time_limit: Any, root_moves: object = None) -> chess.Move:
        """The move for ``board`` within ``time_limit`` (a ``chess.engine.Limit``, seconds); only among
        ``root_moves`` when it is a list."""
        return self.think(board, time_limit, root_moves)[0]

    def think(self, board: chess.Board, time_limit: Any, root_moves: object = None) -> tuple[chess.Move, SearchInfo]:
        """:meth:`search`, and the search's last report (its value, W/D/L, depth, nodes, PV)."""
        white = board.turn == chess.WHITE
        clock = time_limit.white_clock if white else time_limit.black_clock
        inc = time_limit.white_inc if white else time_limit.black_inc
        restrict = list(root_moves) if isinstance(root_moves, list) and root_moves else None
        infos: list[SearchInfo] = []
        move, _ = self.bot.choose_move(
            board,
            None if clock is None else float(clock) * 1000,
            increment_ms=float(inc or 0) * 1000,
            moves_to_go=time_limit.remaining_moves,
            movetime_ms=None if time_limit.time is None else float(time_limit.time) * 1000,
            nodes=time_limit.nodes,
            depth=time_limit.depth,
            root_moves=restrict,
            on_info=infos.append,
            info_interval_ms=float("inf"),  # only the last report, sent as the search ends
            wdl=True,
        )
        return move, infos[-1]


def play_info(board: chess.Board, info: SearchInfo, engine: types.ModuleType) -> dict[str, Any]:
    """``PlayResult.info`` for lichess-bot, from the search's last report on ``board``.

    ``engine`` is ``chess.engine`` (lichess-bot has loaded it; l4demons
    does not import it itself). ``score`` is what lichess-bot's
    ``offer_draw_or_resign`` reads (``score.relative.score(mate_score=40000)``
    against ``resign_score`` and ``offer_draw_score``, in centipawns).
    """
    out: dict[str, Any] = {
        "score": engine.PovScore(engine.Cp(score_cp(info.value)), board.turn),
        "depth": max(1, info.depth),
        "nodes": info.nodes,
        "nps": int(info.nodes * 1000 / max(1.0, info.elapsed_ms)),
        "time": info.elapsed_ms / 1000,
        "pv": list(info.pv),
    }
    if info.wdl is not None:
        out["wdl"] = engine.PovWdl(engine.Wdl(*wdl_permille(info.wdl)), board.turn)
    return out


def _minimal_engine() -> type:
    """lichess-bot's ``MinimalEngine`` (current layout ``lib/``, then the older flat one).

    :raises ImportError: lichess-bot is not importable; the message says what to do.
    """
    try:
        from lib.engine_wrapper import MinimalEngine  # type: ignore[import-not-found]
    except ImportError:
        try:
            from engine_wrapper import MinimalEngine  # type: ignore[import-not-found]
        except ImportError as e:
            raise ImportError(
                "l4demons.lichess.L4DemonsEngine needs lichess-bot's MinimalEngine: import it from lichess-bot's "
                "homemade.py (run lichess-bot from its own folder) with l4demons installed in lichess-bot's "
                "environment; see the l4demons.lichess docstring"
            ) from e
    return MinimalEngine


def _build_engine_class() -> type:
    base = _minimal_engine()
    # lichess-bot wants chess.engine.PlayResult back; lichess-bot has loaded chess.engine to drive its
    # UCI engines. l4demons itself imports chess.engine nowhere outside l4demons.elo (see
    # tests/elo/test_elo_isolation.py): the bot never drives an external engine.
    chess_engine = sys.modules["chess.engine"]

    class L4DemonsEngine(base):  # type: ignore[misc, valid-type]
        """L4Demons for lichess-bot: network + search, budget from the game clock."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raw = kwargs.get("options", args[1] if len(args) > 1 else None)
            options = LichessOptions.from_mapping(dict(raw) if raw else None)  # before lichess-bot pops its keys
            super().__init__(*args, **kwargs)
            self.player = LichessPlayer.from_options(options)

        def search(self, board: chess.Board, time_limit: Any, ponder: bool, draw_offered: bool,
                   root_moves: object) -> Any:
            """``PlayResult(move, None, info)`` with the score, through lichess-bot's draw and resign rules.

            No pondering. The score goes where lichess-bot's own
            ``EngineWrapper.search`` puts it (``self.scores``), and the result
            through ``offer_draw_or_resign`` as there, which sets
            ``draw_offered`` / ``resigned`` from config.yml's ``draw_or_resign``.
            """
            move, info = self.player.think(board, time_limit, root_moves)
            result = chess_engine.PlayResult(move, None, play_info(board, info, chess_engine))
            if not hasattr(self, "offer_draw_or_resign"):  # a lichess-bot from before January 2022
                return result
            self.scores.append(result.info["score"])
            return self.offer_draw_or_resign(result, board)

    L4DemonsEngine.__module__ = __name__
    return L4DemonsEngine


def __getattr__(name: str) -> type:
    """``L4DemonsEngine`` is built on first use, so importing this module needs no lichess-bot."""
    if name == "L4DemonsEngine":
        cls = _build_engine_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
