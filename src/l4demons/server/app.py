"""The HTTP app: the ChessHacks bot-server contract, ``/health`` and the web page.

Routes: ``POST /`` (alive), ``POST /move`` (the bot moves), ``GET /health``
(the model's state and origin), ``GET /`` (a board to play the bot on) and
``GET /static/<file>`` (its scripts, styles and piece images).

Bad input is answered 4xx with an ``error`` field and the server goes on:
400 for a body that is not the contract's JSON, 408 for a body that does
not arrive in time, 413 for an oversized one (counted as it streams), 422
for a PGN that cannot be played on; 503 when the model failed to load, or
when ``max_moves`` moves are already in flight.

The event loop only routes: it never parses or searches, so ``POST /`` and
``/health`` answer at once under any load. A /move is admitted (or refused
503 at once), its body read under the limits (:mod:`.body`), its JSON and
PGN parsed on one of ``parse_threads`` threads, and its search run on a
thread of its own among at most ``max_moves``: the bot evaluates the leaves
of all the searches in flight in shared network calls. A /move that comes
while the weights load waits for them, within a share of its clock; the
wait counts against that clock.

Responses never carry a local path, an exception's text or a traceback:
unexpected errors are logged and answered with a fixed sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, AsyncIterator

import anyio
import anyio.to_thread
import chess
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from l4demons import __version__
from l4demons.encoding import piece_value
from l4demons.server.body import BodyError, read_body
from l4demons.server.model_store import ModelState, ModelStatus, ModelStore
from l4demons.server.positions import PgnError, PgnLimits, board_from_pgn
from l4demons.server.schemas import (
    ErrorResponse,
    HealthResponse,
    MoveRequest,
    MoveResponse,
    RunningResponse,
    describe_validation_error,
)
from l4demons.server.settings import ServeSettings

if TYPE_CHECKING:
    from l4demons.bot import Bot, SearchInfo

logger = logging.getLogger(__name__)

_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(js|css|svg|png|ico|txt)$")
_LOAD_DELAY_S = 0.3
_ANSWER_MS = 2.0
"""Kept back from the search for building and sending the answer."""
_MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "png": "image/png",
                "ico": "image/x-icon", "txt": "text/plain"}


class Refusal(Exception):
    """A request the server will not serve: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class _Lanes:
    """What bounds the work in flight; made on first use, on the event loop that serves."""

    parse: anyio.CapacityLimiter
    """Threads that parse JSON and PGN."""
    search: anyio.CapacityLimiter
    """Threads that search: one per admitted move, so none waits for a thread while its clock runs."""
    in_flight: int = 0
    """/move requests admitted and not answered yet (touched on the event loop only)."""


def create_app(settings: ServeSettings | None = None, store: ModelStore | None = None,
               clock: Callable[[], float] = time.perf_counter) -> FastAPI:
    """The app; it starts loading the model (``store``, default from ``settings``) at startup.

    ``clock``: seconds, against which a move's budget and ``time_taken`` are counted (a test passes
    a fake one, and gives the bot the same).
    """
    settings = settings or ServeSettings()
    store = store or ModelStore.from_settings(settings)
    limits = PgnLimits(settings.max_pgn_chars, settings.max_pgn_plies, settings.max_pgn_variations)
    lanes: list[_Lanes] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Begin loading once uvicorn listens: importing torch holds the interpreter for a
        # moment, and the platform's first POST / must not wait behind it.
        asyncio.get_running_loop().call_later(_LOAD_DELAY_S, store.start)
        yield

    app = FastAPI(title="L4Demons bot server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.store = store
    _add_error_handlers(app)

    @app.post("/", response_model=RunningResponse)
    async def running() -> RunningResponse:
        return RunningResponse()

    @app.get("/health")
    async def health() -> JSONResponse:
        status = store.status()
        body = HealthResponse(state=status.state.value, version=__version__,
                              **{k: v for k, v in vars(status).items() if k != "state"})
        return JSONResponse(body.model_dump(), status_code=200 if status.state is ModelState.READY else 503)

    @app.post("/move")
    async def move(request: Request) -> Response:
        t0 = clock()
        if not lanes:
            lanes.append(_Lanes(anyio.CapacityLimiter(settings.parse_threads), anyio.CapacityLimiter(settings.max_moves)))
        lane = lanes[0]
        if lane.in_flight >= settings.max_moves:
            return _error(503, f"busy: {settings.max_moves} moves are in flight, the server's limit; retry in a moment",
                          t0, close=True, clock=clock)
        lane.in_flight += 1
        try:
            return await _move(request, lane, t0)
        except Refusal as e:
            return _error(e.status, str(e), t0, clock=clock)
        except BodyError as e:
            return _error(e.status, str(e), t0, close=True, clock=clock)
        finally:
            lane.in_flight -= 1

    async def _move(request: Request, lane: _Lanes, t0: float) -> Response:
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
        req, board = await anyio.to_thread.run_sync(parse_move_request, body, limits, limiter=lane.parse)
        bot, status, waited_ms = await _ready_bot(req.timeleft, t0)
        if bot is None:
            chosen, probs = _without_network(board)
            logs = f"the model was still loading after {waited_ms:.0f} ms; a legal move chosen without the network"
            logger.warning("[MOVE] %s: %s", chosen.uci(), logs)
            return JSONResponse(MoveResponse(move=chosen.uci(), time_taken=_ms_since(t0, clock), move_probs=probs,
                                             logs=logs).model_dump())
        # The budget counts from the request's arrival (parsing and the hop to the worker thread are
        # inside it); a wait for the weights is taken off the clock first, like time already spent.
        budget = min(bot.time_policy.budget_ms(max(0, req.timeleft - waited_ms)), settings.max_move_ms)
        chosen, probs, info = await anyio.to_thread.run_sync(_search, bot, board, budget, t0 + waited_ms / 1000,
                                                             clock, limiter=lane.search)
        if chosen not in board.legal_moves:  # the core guarantees this; a server still checks
            raise RuntimeError(f"the bot chose an illegal move {chosen.uci()} in {board.fen()}")
        logs = _logs(info, budget, req.timeleft, waited_ms, status)
        taken = _ms_since(t0, clock)
        logger.info("[MOVE] %s in %.0f ms (%s)", chosen.uci(), taken, logs)
        return JSONResponse(MoveResponse(move=chosen.uci(), time_taken=taken, move_probs=probs, logs=logs).model_dump())

    async def _ready_bot(timeleft: int, t0: float) -> tuple[Bot | None, ModelStatus, float]:
        """The bot, waiting for it while the weights load (at most a share of the clock); its wait in ms.

        :raises Refusal: loading failed.
        """
        bot, status = store.bot, store.status()
        waited = 0.0
        if bot is None and status.state is ModelState.LOADING:
            allowed_s = timeleft * settings.load_wait_fraction / 1000 - (clock() - t0)
            started = clock()
            await store.until_loaded(allowed_s)
            waited = _ms_since(started, clock)
            bot, status = store.bot, store.status()
        if bot is None and status.state is ModelState.FAILED:
            raise Refusal(503, f"the model failed to load: {status.error}")
        return bot, status, waited

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(_web_file("index.html").decode())

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if not _STATIC_NAME.match(name):
            return _error(404, f"no static file {name[:60]!r}")
        try:
            data = _web_file(name)
        except FileNotFoundError:
            return _error(404, f"no static file {name!r}")
        return Response(data, media_type=_MEDIA_TYPES[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "no-cache"})

    return app


def parse_move_request(body: bytes, limits: PgnLimits = PgnLimits()) -> tuple[MoveRequest, chess.Board]:
    """The request and the board it asks about (runs on a worker thread: JSON and PGN cost CPU).

    :raises Refusal: 400 for a body that is not the contract's JSON, 422 for a PGN that cannot be played on.
    """
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise Refusal(400, f'body is not JSON ({e.msg} at line {e.lineno} column {e.colno}); '
                           'send {"pgn": "<game so far>", "timeleft": <ms>}') from None
    except (ValueError, RecursionError):  # not UTF-8, a number too long to read, nesting too deep
        raise Refusal(400, 'body is not JSON the server can read; send {"pgn": "<game so far>", "timeleft": <ms>}') from None
    if not isinstance(data, dict):
        raise Refusal(400, f'body must be a JSON object {{"pgn": ..., "timeleft": ...}}, not {type(data).__name__}')
    try:
        req = MoveRequest.model_validate(data)
    except ValidationError as e:
        raise Refusal(400, describe_validation_error(e)) from None
    try:
        return req, board_from_pgn(req.pgn, limits)
    except PgnError as e:
        raise Refusal(422, str(e)) from None


def _search(bot: Bot, board: chess.Board, budget_ms: float, t0: float, clock: Callable[[], float] = time.perf_counter
            ) -> tuple[chess.Move, dict[str, float], SearchInfo | None]:
    """Run the bot (in a worker thread) for what is left of ``budget_ms`` since ``t0``; (move, probs, last info)."""
    infos: list[SearchInfo] = []
    left = budget_ms - _ms_since(t0, clock) - _ANSWER_MS
    move, probs = bot.choose_move(board, movetime_ms=max(0.0, left), on_info=infos.append, info_interval_ms=1e9)
    return move, probs, (infos[-1] if infos else None)


def _without_network(board: chess.Board) -> tuple[chess.Move, dict[str, float]]:
    """A legal move when no network is there yet: the most valuable capture, else the first legal move."""
    moves = list(board.generate_legal_moves())
    victim = board.piece_type_at
    move = max(moves, key=lambda m: piece_value(victim(m.to_square) or chess.KING) if board.is_capture(m) else -1)
    return move, {move.uci(): 1.0}


def _ms_since(t: float, clock: Callable[[], float] = time.perf_counter) -> float:
    return (clock() - t) * 1000


def _logs(info: SearchInfo | None, budget: float, timeleft: int, waited_ms: float, status: ModelStatus) -> str:
    weights = "untrained network" if status.origin == "random" else (
        f"{status.file}@{(status.commit or '?')[:8]} ({status.origin})")
    head = f"budget {budget:.0f} ms of {timeleft} ms left"
    if waited_ms >= 1:
        head += f" after waiting {waited_ms:.0f} ms for the weights to load"
    if info is None:
        return f"{head}; {weights} on {status.device}"
    pv = " ".join(m.uci() for m in info.pv[:8])
    return (f"{head}; searched {info.elapsed_ms:.0f} ms, {info.nodes} nodes, {info.visits} visits, "
            f"depth {info.depth}, value {info.value:+.2f}, pv {pv}; {weights} on {status.device}")


def _error(status_code: int, message: str, t0: float | None = None, close: bool = False,
           clock: Callable[[], float] = time.perf_counter) -> JSONResponse:
    taken = None if t0 is None else _ms_since(t0, clock)
    return JSONResponse(ErrorResponse(error=message, time_taken=taken).model_dump(), status_code=status_code,
                        headers={"Connection": "close"} if close else None)


def _web_file(name: str) -> bytes:
    """A file of the packaged web page (``l4demons/web``)."""
    ref = resources.files("l4demons").joinpath("web", name)
    if not ref.is_file():
        raise FileNotFoundError(name)
    return ref.read_bytes()


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON with an ``error`` field, including unknown routes and bugs (whose details are logged)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("[SERVE] unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; it is in the server's log, and the server goes on serving")
