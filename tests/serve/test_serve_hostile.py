"""Hostile input over real HTTP: bodies past the limit (chunked or declared), slow bodies, PGNs past
their caps, more moves than the server admits, and responses that must not leak the server's insides.

Bounds on time here are generous; ``bench/hostile.py`` measures the targets.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import chess
import httpx
import pytest

from l4demons.bot import Bot
from l4demons.server import ModelStore, ServeSettings, create_app
from l4demons.server.positions import PgnError, board_from_pgn

from serve_support import LiveServer, hold_searches, tiny_bot  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def small_limits(tiny_bot: Bot) -> Iterator[LiveServer]:  # noqa: F811
    """A server with small limits, so the tests stay quick."""
    settings = ServeSettings(max_body_bytes=100_000, body_timeout_s=1.0, max_pgn_chars=20_000, max_pgn_plies=300,
                             max_pgn_variations=5, max_moves=2)
    with LiveServer(create_app(settings, ModelStore.ready_with(tiny_bot, origin="random"))) as server:
        yield server


def raw_request(server: LiveServer, head: str, body: bytes = b"") -> bytes:
    """Send bytes as they are and read the answer to the end (the server closes the connection)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_chunked_body_is_cut_at_the_limit_while_it_streams(small_limits: LiveServer) -> None:
    sent = [0]

    def endless_enough() -> Iterator[bytes]:  # 20 MB, chunked: no Content-Length to refuse it by
        for _ in range(320):
            sent[0] += 65536
            yield b'{"pgn": "' + b" " * 65526 + b'", '

    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        r = c.post("/move", content=endless_enough(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert r.headers["connection"] == "close"
    # A body that never ends is answered too: nothing waits for its end once it is past the limit.
    chunk = b"%x\r\n%s\r\n" % (50_000, b" " * 50_000)
    answer = raw_request(small_limits, "POST /move HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n", chunk * 3)
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_declared_oversized_body_is_refused_unread(small_limits: LiveServer) -> None:
    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        r = c.post("/move", json={"pgn": " " * 200_000, "timeleft": 5})
    assert r.status_code == 413 and "200,0" in r.json()["error"]
    # With Expect: 100-continue the client waits for a go-ahead that never comes: not a byte is sent.
    answer = raw_request(small_limits, "POST /move HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                       "Content-Length: 50000000\nExpect: 100-continue\n\n")
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer


def test_a_body_that_does_not_arrive_in_time_is_408(small_limits: LiveServer) -> None:
    answer = raw_request(small_limits, "POST /move HTTP/1.1\nHost: x\nContent-Length: 100\n\n", b'{"pgn": ')
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive" in answer


@pytest.mark.parametrize(("pgn", "words"), [
    ("1. e4 " + "(1. d4 " * 6 + ")" * 6, "variations"),
    ("1. Nf3 Nf6 2. Ng1 Ng8 " * 80, "300 plies"),
    ("1. e4 {" + "x" * 25_000 + "}", "characters"),
])
def test_pgns_past_their_caps_are_422(small_limits: LiveServer, pgn: str, words: str) -> None:
    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        r = c.post("/move", json={"pgn": pgn, "timeleft": 5})
        assert r.status_code == 422 and words in r.json()["error"], r.text
        ok = c.post("/move", json={"pgn": "1. e4 (1. d4 d5) e5 {a comment} 2. Nf3", "timeleft": 5})  # within the caps
        board = chess.Board()
        for san in ("e4", "e5", "Nf3"):
            board.push_san(san)
        assert ok.status_code == 200 and chess.Move.from_uci(ok.json()["move"]) in board.legal_moves


def test_bodies_nested_too_deep_or_numbers_too_long_are_400(small_limits: LiveServer) -> None:
    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        for body in (b"[" * 50_000 + b"]" * 50_000, b'{"pgn": "", "timeleft": ' + b"9" * 5000 + b"}"):
            r = c.post("/move", content=body)
            assert r.status_code == 400 and "not JSON" in r.json()["error"]


def test_moves_past_the_limit_in_flight_get_a_clear_503(small_limits: LiveServer, tiny_bot: Bot,  # noqa: F811
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    held, release = hold_searches(tiny_bot, monkeypatch)
    results: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=small_limits.url, timeout=30) as c:
            results.append(c.post("/move", json={"pgn": "", "timeleft": 1000}))

    movers = [threading.Thread(target=post) for _ in range(2)]
    for t in movers:
        t.start()
    for _ in movers:
        assert held.acquire(timeout=10)  # both admitted moves are searching
    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        busy = c.post("/move", json={"pgn": "", "timeleft": 1000})
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        assert c.post("/").status_code == 200 and c.get("/health").status_code == 200
    release.set()
    for t in movers:
        t.join(30)
    assert [r.status_code for r in results] == [200, 200]


def test_an_unexpected_error_is_500_without_its_text(small_limits: LiveServer, tiny_bot: Bot,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("device fell over in /home/someone/secret-place")

    monkeypatch.setattr(tiny_bot, "choose_move", broken)
    with httpx.Client(base_url=small_limits.url, timeout=30) as c:
        r = c.post("/move", json={"pgn": "", "timeleft": 1000})
    assert r.status_code == 500 and "internal error" in r.json()["error"]
    assert "secret" not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text


@pytest.mark.parametrize(("pgn", "words"), [
    ("1. e4 e5\n\n2. Nf3", "blank line"),  # the reader would stop at the blank line: the wrong position
    ('[Event "x"]\n\n\n1. e4 e5', "only part of its mainline"),
    ("1. e4 {a comment} zz", "unexpected text 'zz'"),  # junk after a comment is refused too
    ("1. e4 " + " " * 300 + "e5", "without a move"),
    ("1. " * 200, "without a move"),
])
def test_pgn_text_the_reader_would_misread_is_refused(pgn: str, words: str) -> None:
    with pytest.raises(PgnError, match=words):
        board_from_pgn(pgn)


def test_comments_and_variations_are_skipped_not_played() -> None:
    board = board_from_pgn('[Event "x"]\n\n1. e4 {[%clk 0:03:00]\n\nstill a comment} e5 (1... c5 2. Nf3 (2. c3)) '
                           "2. Nf3 ; to the end of the line ) junk\nNc6 *")
    assert [m.uci() for m in board.move_stack] == ["e2e4", "e7e5", "g1f3", "b8c6"]


@pytest.mark.parametrize("bad", [{"max_moves": 0}, {"max_body_bytes": -1}, {"load_wait_fraction": 2.0}, {"port": 70000}])
def test_limits_that_make_no_sense_are_refused_in_one_line(bad: dict) -> None:
    with pytest.raises(ValueError) as err:
        ServeSettings(**bad)
    assert "\n" not in str(err.value)
