"""``l4demons uci``: the bot as a UCI engine on stdin/stdout.

The protocol lives in :class:`UciEngine`, which takes one line at a time
and writes through a ``send`` callable, so a scripted transport tests it
without a process (as python-chess's own tests do); :func:`run_uci` is the
stdin/stdout loop around it. Its values and parsing (options, ``go``
limits, ``position``, ``info`` lines) are :mod:`l4demons.uci_protocol`'s.

Commands: ``uci``, ``isready``, ``setoption``, ``ucinewgame``, ``position
startpos|fen ... [moves ...]``, ``go`` (``wtime btime winc binc movestogo
movetime nodes depth infinite ponder searchmoves mate``), ``stop``,
``ponderhit``, ``quit``; ``info`` lines (depth, seldepth, nodes, nps, time,
score, pv; ``wdl`` with ``UCI_ShowWDL``) while searching. The search runs in its own thread, so ``stop``
and ``isready`` are answered while it thinks; ``stop`` ends the search
before its next network call and ``bestmove`` follows at once.

A search counts as over from the moment its ``bestmove`` is written (the
two happen under one lock), not when its thread has ended: a GUI or match
runner that answers at once sends the next ``go`` while the old thread is
still returning from writing ``bestmove``, and that ``go`` must start a
search, never be refused as "already searching".

Options: ``Hub``, ``File``, ``Device``, ``Threads``, ``Move Overhead`` (ms kept
back per move for the GUI and transport), ``AllowRandom`` and ``UCI_ShowWDL``.
``score cp`` is the search's value (W - L) on Lc0's centipawn scale; with
``UCI_ShowWDL`` on, ``wdl W D L`` (per mille, side to move's view, as
Stockfish writes it) follows it: W - L is that same value and D the
network's draw share at the root (:func:`l4demons.bot.search_wdl`), which
costs one more network call per search. Weights are
loaded in the background from ``uci`` on (same resolution as ``serve.py``:
hub, then the offline cache); ``isready`` and ``go`` wait for them. An
engine with no weights to play says why (``info string`` and stderr) and
exits with status 2, unless ``AllowRandom`` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from typing import TYPE_CHECKING, Callable

import chess

from l4demons import __version__
from l4demons.uci_protocol import OPTIONS, EngineOptions, GoParams, UciError, info_line, parse_go, parse_position

if TYPE_CHECKING:
    import argparse

    from l4demons.bot import Bot

logger = logging.getLogger(__name__)

ENGINE_NAME = f"L4Demons {__version__}"


class EngineFatal(RuntimeError):
    """The engine cannot play at all (no weights); ``run_uci`` exits with status 2."""


# -- the engine (protocol state, no stdin/stdout) -------------------------------


BotLoader = Callable[[EngineOptions], "tuple[Bot, str]"]
"""Builds the bot for these options and a one-line description; raises with a user-facing message."""


class UciEngine:
    """UCI protocol state: feed it lines with :meth:`handle`; it answers through ``send``.

    ``send`` may be called from the search thread too; calls are serialized here
    (re-entrantly: a scripted GUI may answer a line from inside ``send``).
    """

    def __init__(self, send: Callable[[str], None], options: EngineOptions = EngineOptions(),
                 loader: BotLoader | None = None) -> None:
        self._send_raw = send
        self._send_lock = threading.RLock()
        self.options = options
        self._loader = loader or load_bot
        self.board = chess.Board()
        self._bot: Bot | None = None
        self._bot_key: tuple | None = None
        self._load_thread: threading.Thread | None = None
        self._load_result: tuple[tuple, object] | None = None  # (key, bot-and-desc or exception)
        self._search: threading.Thread | None = None
        self._search_over: threading.Event | None = None  # set with the search's bestmove, under _send_lock
        self._stop = threading.Event()
        self._released = threading.Event()  # infinite/ponder searches wait for stop before bestmove

    def send(self, line: str) -> None:
        with self._send_lock:
            self._send_raw(line)

    def handle(self, line: str) -> bool:
        """Act on one input line; False after ``quit``.

        :raises EngineFatal: the engine cannot play (no weights and AllowRandom off).
        """
        tokens = line.split()
        if not tokens:
            return True
        command, args = tokens[0], tokens[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            self.send(f"info string unknown command {command!r}")
            return True
        try:
            return handler(args) is not False
        except UciError as e:
            self.send(f"info string error: {e}")
            return True

    def wait(self) -> None:
        """Block until the current search (if any) has sent its bestmove."""
        if self._search is not None:
            self._search.join()

    def close(self) -> None:
        """Stop any search (its bestmove is still sent) and wait for it."""
        self._stop_search()

    # -- commands ---------------------------------------------------------

    def _cmd_uci(self, args: list[str]) -> None:
        self.send(f"id name {ENGINE_NAME}")
        self.send("id author the L4Demons authors")
        for opt in OPTIONS:
            self.send(opt.declaration(getattr(self.options, opt.field)))
        self.send("uciok")
        if self._bot is None:
            self._start_loading()  # torch and the weights load while the GUI sets options

    def _cmd_debug(self, args: list[str]) -> None:
        pass

    def _cmd_isready(self, args: list[str]) -> None:
        if not self._searching():
            self._ensure_bot()
        self.send("readyok")

    def _cmd_setoption(self, args: list[str]) -> None:
        if not args or args[0] != "name":
            raise UciError("setoption name <name> [value <value>]")
        value_at = args.index("value") if "value" in args else len(args)
        name = " ".join(args[1:value_at]).lower()
        raw = " ".join(args[value_at + 1:])
        opt = next((o for o in OPTIONS if o.name.lower() == name), None)
        if opt is None:
            raise UciError(f"unknown option {name!r}")
        self.options = dataclasses.replace(self.options, **{opt.field: opt.parse(raw)})
        if opt.field == "threads" and self.options.threads:
            import torch

            torch.set_num_threads(self.options.threads)
        if opt.field == "move_overhead" and self._bot is not None:
            self._apply_overhead(self._bot)

    def _cmd_ucinewgame(self, args: list[str]) -> None:
        self._stop_search()
        self.board = chess.Board()

    def _cmd_position(self, args: list[str]) -> None:
        board, problem = parse_position(args)
        self.board = board
        if problem:
            self.send(f"info string error: {problem}")

    def _cmd_go(self, args: list[str]) -> None:
        if self._searching():
            raise UciError("already searching; send stop first")
        params = parse_go(args)
        bot = self._ensure_bot()
        self._stop.clear()
        self._released.clear()
        board = self.board.copy()
        over = threading.Event()
        self._search_over = over
        self._search = threading.Thread(target=self._think, args=(bot, board, params, over), name="l4d-uci-search",
                                        daemon=True)
        self._search.start()

    def _cmd_stop(self, args: list[str]) -> None:
        self._stop_search()

    def _cmd_ponderhit(self, args: list[str]) -> None:
        # Pondering is not offered (no Ponder option); a GUI that ponders anyway gets the move now.
        self._stop_search()

    def _cmd_quit(self, args: list[str]) -> bool:
        self._stop_search()
        return False

    # -- searching --------------------------------------------------------

    def _searching(self) -> bool:
        """Whether a search has not sent its ``bestmove`` yet (its thread may outlive that by a moment)."""
        return self._search_over is not None and not self._search_over.is_set()

    def _stop_search(self) -> None:
        self._stop.set()
        self._released.set()
        self.wait()

    def _bestmove(self, over: threading.Event, move: chess.Move | None) -> None:
        """Send ``bestmove`` and mark the search over in one step: the next ``go`` may follow at once."""
        with self._send_lock:
            over.set()
            self._send_raw(f"bestmove {move.uci() if move else '(none)'}")

    def _think(self, bot: Bot, board: chess.Board, p: GoParams, over: threading.Event) -> None:
        """The search thread: search, then ``bestmove``."""
        if board.is_game_over():
            if p.infinite or p.ponder:
                self._released.wait()
            self.send("info string the game is over in this position")
            self._bestmove(over, None)
            return
        white = board.turn == chess.WHITE
        clock = p.wtime if white else p.btime
        root = [board.parse_uci(m) for m in p.searchmoves if _is_legal_uci(board, m)] or None
        unlimited = p.infinite or p.ponder
        show_wdl = self.options.show_wdl
        try:
            move, _ = bot.choose_move(
                board,
                None if unlimited else clock,
                increment_ms=(p.winc if white else p.binc),
                moves_to_go=p.movestogo,
                movetime_ms=None if unlimited else p.movetime,
                nodes=None if unlimited else p.nodes,
                depth=None if unlimited else (p.depth or (2 * p.mate if p.mate else None)),
                stop=self._stop,
                on_info=lambda info: self.send(info_line(info, show_wdl)),
                root_moves=root,
                wdl=show_wdl,
            )
        except Exception as e:  # noqa: BLE001 - a GUI waiting for bestmove must get one
            logger.exception("search failed")
            self.send(f"info string error: search failed ({type(e).__name__}: {e}); playing a legal move")
            move = next(iter(board.legal_moves))
        if unlimited:
            self._released.wait()  # UCI: no bestmove during infinite/ponder until stop
        self._bestmove(over, move)

    # -- the network --------------------------------------------------------

    def _start_loading(self) -> None:
        """Load the network for the current options in a thread (no-op while one is loading)."""
        if self._load_thread is not None:
            return
        key, options = self.options.weights_key(), self.options

        def load() -> None:
            try:
                self._load_result = (key, self._loader(options))
            except Exception as e:  # noqa: BLE001 - reported when the bot is needed
                self._load_result = (key, e)

        self._load_thread = threading.Thread(target=load, name="l4d-uci-load", daemon=True)
        self._load_thread.start()

    def _ensure_bot(self) -> Bot:
        """The bot for the current options, loading (or reloading) it when needed.

        :raises EngineFatal: it cannot be loaded.
        """
        key = self.options.weights_key()
        if self._bot is not None and self._bot_key == key:
            return self._bot
        while True:  # a load begun under older options is finished, then redone
            self._start_loading()
            self._load_thread.join()
            self._load_thread = None
            loaded_key, result = self._load_result
            if loaded_key == key:
                break
        if isinstance(result, Exception):
            message = str(result) if isinstance(result, ValueError) or _is_hub_error(result) else (
                f"{type(result).__name__}: {result}")
            self.send(f"info string error: {message}")
            raise EngineFatal(message)
        bot, description = result
        self._apply_overhead(bot)
        self._bot, self._bot_key = bot, key
        self.send(f"info string {description}")
        return bot

    def _apply_overhead(self, bot: Bot) -> None:
        bot.time_policy = dataclasses.replace(bot.time_policy, safety_ms=float(self.options.move_overhead))


def _is_legal_uci(board: chess.Board, text: str) -> bool:
    try:
        return chess.Move.from_uci(text) in board.legal_moves
    except ValueError:
        return False


def _is_hub_error(e: Exception) -> bool:
    from l4demons.hub.base import HubError
    from l4demons.server.weights import NoWeightsError

    return isinstance(e, (HubError, NoWeightsError))


def load_bot(options: EngineOptions) -> tuple[Bot, str]:
    """Resolve, load and warm up the weights the options name (as serve.py does).

    :raises l4demons.server.weights.NoWeightsError: none anywhere, and AllowRandom is off.
    """
    from l4demons.server.model_store import load_bot as serve_load_bot
    from l4demons.server.settings import ServeSettings

    settings = ServeSettings(hub=options.hub or None, token=options.token, file=options.file or "model_best.pt",
                             device=options.device, allow_random=options.allow_random,
                             threads=options.threads or None)
    bot, status = serve_load_bot(settings)
    if status.origin == "random":
        return bot, f"UNTRAINED {status.net} network (AllowRandom) on {status.device}"
    return bot, (f"weights {status.file}@{(status.commit or '?')[:8]} ({status.origin}), {status.net} on {status.device}"
                 + (f"; {status.note}" if status.note else ""))


# -- the process ------------------------------------------------------------------


def run_uci(args: argparse.Namespace) -> int:
    """Speak UCI on stdin/stdout until ``quit`` or end of input; 2 when the engine cannot play."""
    # Log to stderr: stdout belongs to the protocol.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    from l4demons.flags import from_flags

    options = from_flags(EngineOptions, args)

    def send(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    engine = UciEngine(send, options)
    try:
        for line in sys.stdin:
            if not engine.handle(line):
                break
        else:
            engine.close()
    except EngineFatal as e:
        print(f"l4demons uci: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0
