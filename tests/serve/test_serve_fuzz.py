"""Generated requests against every route: never a 5xx, never a leak, always a legal move when 200.

The suite runs a few hundred; ``bench/hostile.py`` runs 10,000 of the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import chess
import pytest
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from l4demons.bot import Bot
from l4demons.server import ModelStore, ServeSettings, create_app
from l4demons.server.positions import board_from_pgn

from request_strategies import requests
from serve_support import tiny_bot  # noqa: F401 - fixture

FUZZ_SETTINGS = ServeSettings(max_move_ms=20)
"""Searches short enough for thousands of requests; everything else as served."""


@pytest.fixture(scope="module")
def app_client(tiny_bot: Bot) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(FUZZ_SETTINGS, ModelStore.ready_with(tiny_bot, origin="random")),
                    raise_server_exceptions=False) as c:
        yield c


def check_answer(client: TestClient, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    """Send one request and check the answer; its status."""
    r = client.request(method, path, headers=headers, content=body)
    assert r.status_code < 500, (r.status_code, r.text[:300], method, path, body[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text
    if r.status_code >= 400 and method != "HEAD":
        assert isinstance(r.json()["error"], str)
    if r.status_code == 200 and path == "/move":
        board = board_from_pgn(json.loads(body)["pgn"])
        assert chess.Move.from_uci(r.json()["move"]) in board.legal_moves
    return r.status_code


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_generated_requests_never_get_a_5xx(app_client: TestClient, request: tuple) -> None:
    check_answer(app_client, *request)
