"""The HTTP app: the ChessHacks bot-server contract, ``/health`` and the web page.

Routes: ``POST /`` (alive), ``POST /move`` (the bot moves), ``GET /health``
(the model's state and origin), ``GET /`` (a board to play the bot on) and
``GET /static/<file>`` (its scripts, styles and piece images).

Bad input is answered 4xx with an ``error`` field and the server goes on:
400 for a body that is not the contract's JSON, 413 for an oversized one,
422 for a PGN that cannot be played on, 503 while the model is loading or
when it failed to load. The search runs in a worker thread so the event
loop keeps answering (``POST /``, ``/health``) during a long move.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from importlib import resources
from typing import AsyncIterator

import chess
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from l4demons import __version__
from l4demons.server.model_store import ModelState, ModelStatus, ModelStore
from l4demons.server.positions import PgnError, board_from_pgn
from l4demons.server.schemas import (
    ErrorResponse,
    HealthResponse,
    MoveRequest,
    MoveResponse,
    RunningResponse,
    describe_validation_error,
)
from l4demons.server.settings import ServeSettings

logger = logging.getLogger(__name__)

_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(js|css|svg|png|ico|txt)$")
_LOAD_DELAY_S = 0.3
_ANSWER_MS = 2.0
"""Kept back from the search for building and sending the answer."""
_MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "png": "image/png",
                "ico": "image/x-icon", "txt": "text/plain"}


def create_app(settings: ServeSettings | None = None, store: ModelStore | None = None) -> FastAPI:
    """The app; it starts loading the model (``store``, default from ``settings``) at startup."""
    settings = settings or ServeSettings()
    store = store or ModelStore.from_settings(settings)

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
    async def move(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_body_bytes:  # refuse before reading it
            return _error(413, f"body of {declared} bytes is over the {settings.max_body_bytes}-byte limit", t0)
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return _error(413, f"body of {len(body)} bytes is over the {settings.max_body_bytes}-byte limit", t0)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return _error(400, f'body is not JSON ({e}); send {{"pgn": "<game so far>", "timeleft": <ms>}}', t0)
        if not isinstance(data, dict):
            return _error(400, f'body must be a JSON object {{"pgn": ..., "timeleft": ...}}, not {type(data).__name__}', t0)
        try:
            req = MoveRequest.model_validate(data)
        except ValidationError as e:
            return _error(400, describe_validation_error(e), t0)
        try:
            board = board_from_pgn(req.pgn)
        except PgnError as e:
            return _error(422, str(e), t0)
        bot, status = store.bot, store.status()
        if bot is None:
            return _error(503, _not_ready(status), t0)
        # The budget counts from the request's arrival, so parsing and the hop to the worker
        # thread are inside it, not on top of it.
        budget = min(bot.time_policy.budget_ms(req.timeleft), settings.max_move_ms)
        chosen, probs, info = await run_in_threadpool(_search, bot, board, budget, t0)
        if chosen not in board.legal_moves:  # the core guarantees this; a server still checks
            raise RuntimeError(f"the bot chose an illegal move {chosen.uci()} in {board.fen()}")
        taken = (time.perf_counter() - t0) * 1000
        logs = _logs(info, budget, req.timeleft, status)
        logger.info("[MOVE] %s in %.0f ms (%s)", chosen.uci(), taken, logs)
        return JSONResponse(MoveResponse(move=chosen.uci(), time_taken=taken, move_probs=probs, logs=logs).model_dump())

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(_web_file("index.html").decode())

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if not _STATIC_NAME.match(name):
            return _error(404, f"no static file {name!r}")
        try:
            data = _web_file(name)
        except FileNotFoundError:
            return _error(404, f"no static file {name!r}")
        return Response(data, media_type=_MEDIA_TYPES[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "no-cache"})

    return app


def _search(bot, board: chess.Board, budget_ms: float, t0: float):  # noqa: ANN001, ANN202 - bot is lazily typed
    """Run the bot (in a worker thread) for what is left of ``budget_ms``; (move, probs, last SearchInfo)."""
    infos = []
    left = budget_ms - (time.perf_counter() - t0) * 1000 - _ANSWER_MS
    move, probs = bot.choose_move(board, movetime_ms=max(0.0, left), on_info=infos.append, info_interval_ms=1e9)
    return move, probs, (infos[-1] if infos else None)


def _logs(info, budget: float, timeleft: int, status: ModelStatus) -> str:  # noqa: ANN001
    weights = "untrained network" if status.origin == "random" else (
        f"{status.file}@{(status.commit or '?')[:8]} ({status.origin})")
    head = f"budget {budget:.0f} ms of {timeleft} ms left"
    if info is None:
        return f"{head}; {weights} on {status.device}"
    pv = " ".join(m.uci() for m in info.pv[:8])
    return (f"{head}; searched {info.elapsed_ms:.0f} ms, {info.nodes} nodes, {info.visits} visits, "
            f"depth {info.depth}, value {info.value:+.2f}, pv {pv}; {weights} on {status.device}")


def _not_ready(status: ModelStatus) -> str:
    if status.state is ModelState.FAILED:
        return f"the model failed to load: {status.error}"
    return "the model is still loading; retry in a moment (GET /health tells when it is ready)"


def _error(status_code: int, message: str, t0: float | None = None) -> JSONResponse:
    taken = None if t0 is None else (time.perf_counter() - t0) * 1000
    return JSONResponse(ErrorResponse(error=message, time_taken=taken).model_dump(), status_code=status_code)


def _web_file(name: str) -> bytes:
    """A file of the packaged web page (``l4demons/web``)."""
    ref = resources.files("l4demons").joinpath("web", name)
    if not ref.is_file():
        raise FileNotFoundError(name)
    return ref.read_bytes()


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON with an ``error`` field, including unknown routes and bugs."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("[SERVE] unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}: {exc}); the server goes on serving")
