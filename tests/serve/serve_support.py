"""Shared by the serving tests: a tiny network, a hub holding it, and a real server on a free port.

Not a conftest.py on purpose: several test folders import helpers with
``from conftest import ...``, and a second conftest module would shadow
theirs (or theirs ours) depending on the order pytest loads them. Test
modules import the fixtures they use from here.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from l4demons.bot import Bot
from l4demons.hub.local import LocalHub
from l4demons.network import NetConfig, build_network, save_weights
from l4demons.server import ModelStore, ServeSettings, create_app

TINY = NetConfig.from_name("tiny")
ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "test-artifacts"
"""Where tests leave things to look at (the web page's screenshot)."""


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread, on a port the OS picked."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def network_clock(bot: Bot, monkeypatch: pytest.MonkeyPatch,
                  step_ms: float | Callable[[], float]) -> Callable[[], float]:
    """Give ``bot`` a fake clock (seconds) that moves only when it calls the network, ``step_ms`` per call
    (or, given a function, what it says at each call).

    Its budgets are then kept on that clock, exactly, whatever else the machine does. The step costs it
    remembers were timed on the real clock: it starts afresh on this one (and again after the test).
    """
    now = [0.0]
    evaluate = bot.evaluator.evaluate

    def costly(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        now[0] += (step_ms() if callable(step_ms) else step_ms) / 1000
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(bot.evaluator, "evaluate", costly)
    monkeypatch.setattr(bot, "clock", lambda: now[0])
    monkeypatch.setattr(bot, "_step_costs", collections.deque(maxlen=bot._step_costs.maxlen))
    return bot.clock


@pytest.fixture(scope="session")
def tiny_bot() -> Bot:
    bot = Bot.random(TINY, seed=3)
    bot.warmup()
    return bot


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory: pytest.TempPathFactory) -> LocalHub:
    """A local hub whose head holds a tiny network as model.pt and model_best.pt."""
    root = tmp_path_factory.mktemp("hub")
    weights = root / "weights.pt"
    save_weights(build_network(TINY, seed=5), TINY, weights)
    hub = LocalHub(root / "hub")
    hub.commit({"model.pt": weights, "model_best.pt": weights}, "Training cycle 0, Elo ~0, Loss 0", parent=None)
    return hub


@pytest.fixture(scope="module")
def live(tiny_bot: Bot) -> Iterator[LiveServer]:
    """A real server with a ready tiny bot."""
    store = ModelStore.ready_with(tiny_bot, origin="random", note="test bot")
    with LiveServer(create_app(ServeSettings(), store)) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def hold_searches(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Semaphore, threading.Event]:
    """Make the bot's searches wait for a go-ahead: (released once per search that started, the go-ahead)."""
    started, go = threading.Semaphore(0), threading.Event()
    choose = bot.choose_move

    def held_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started.release()
        assert go.wait(30)
        return choose(*args, **kwargs)

    monkeypatch.setattr(bot, "choose_move", held_search)
    return started, go
