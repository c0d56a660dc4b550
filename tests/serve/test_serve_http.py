"""The HTTP contract (docs/serving.md) over real HTTP: fields, types, bad input, loading, a whole game."""

from __future__ import annotations

import threading
import time

import chess
import chess.pgn
import httpx
import pytest

from l4demons.bot import TimePolicy
from l4demons.server import ModelState, ModelStatus, ModelStore, ServeSettings, create_app
from l4demons.server.weights import NoWeightsError

from serve_support import LiveServer, client, hold_searches, live, network_clock, tiny_bot  # noqa: F401 - fixtures

MOVE_FIELDS = {"move", "error", "time_taken", "move_probs", "logs"}


def pgn_of(board: chess.Board) -> str:
    return str(chess.pgn.Game.from_board(board))


def check_move_answer(body: dict, board: chess.Board) -> chess.Move:
    assert set(body) == MOVE_FIELDS
    assert body["error"] is None
    assert isinstance(body["time_taken"], float) and body["time_taken"] >= 0
    assert isinstance(body["logs"], str) and body["logs"]
    move = chess.Move.from_uci(body["move"])
    assert move in board.legal_moves
    probs = body["move_probs"]
    assert isinstance(probs, dict) and probs
    assert set(probs) <= {m.uci() for m in board.legal_moves}
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    return move


def test_post_root_says_running(client: httpx.Client) -> None:
    r = client.post("/")
    assert r.status_code == 200 and r.json() == {"running": True}


def test_health_reports_the_model(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "ready" and body["device"] == "cpu" and body["net"] == "b2c32-se-mat"
    assert {"hub", "file", "commit", "origin", "error", "load_seconds"} <= set(body)


def test_move_fields_and_types(client: httpx.Client) -> None:
    board = chess.Board()
    board.push_san("e4")
    r = client.post("/move", json={"pgn": pgn_of(board), "timeleft": 5000})
    assert r.status_code == 200
    check_move_answer(r.json(), board)


@pytest.mark.parametrize("pgn", ["", "   \n", '[Event "casual"]\n[White "a"]\n\n*'])
def test_empty_pgn_is_the_start_position(client: httpx.Client, pgn: str) -> None:
    r = client.post("/move", json={"pgn": pgn, "timeleft": 1000})
    assert r.status_code == 200
    check_move_answer(r.json(), chess.Board())


def test_fen_header_and_comments_are_understood(client: httpx.Client) -> None:
    fen = "4k3/P7/8/8/8/8/8/4K3 w - - 0 1"
    pgn = f'[SetUp "1"]\n[FEN "{fen}"]\n\n{{a comment}} *'
    r = client.post("/move", json={"pgn": pgn, "timeleft": 1000})
    assert r.status_code == 200
    check_move_answer(r.json(), chess.Board(fen))


def test_single_legal_move_is_answered_at_once(client: httpx.Client, tiny_bot) -> None:  # noqa: ANN001
    board = chess.Board("k7/8/1K6/8/8/8/8/7R b - - 0 1")  # Kb8 is the only move
    assert board.legal_moves.count() == 1
    calls = tiny_bot.evaluator.calls  # the live server's bot
    r = client.post("/move", json={"pgn": f'[SetUp "1"]\n[FEN "{board.fen()}"]\n\n*', "timeleft": 60_000})
    body = r.json()
    assert r.status_code == 200 and body["move_probs"] == {body["move"]: 1.0}
    assert tiny_bot.evaluator.calls == calls  # no search, not even the root's network call (it had 2 s to spend)


BAD_BODIES = [
    pytest.param(b"this is not json", 400, id="not-json"),
    pytest.param(b"", 400, id="empty-body"),
    pytest.param(b"\xff\xfe\x00", 400, id="not-utf8"),
    pytest.param(b"[1, 2]", 400, id="json-array"),
    pytest.param(b'"1. e4"', 400, id="json-string"),
    pytest.param(b'{"timeleft": 1000}', 400, id="missing-pgn"),
    pytest.param(b'{"pgn": "1. e4"}', 400, id="missing-timeleft"),
    pytest.param(b"{}", 400, id="missing-both"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": -1}', 400, id="negative-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": true}', 400, id="bool-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": 1000.5}', 400, id="float-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": "1000"}', 400, id="string-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": null}', 400, id="null-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": 1e400}', 400, id="huge-float-timeleft"),
    pytest.param(b'{"pgn": "1. e4", "timeleft": 100000000000000000000000000000}', 400, id="huge-int-timeleft"),
    pytest.param(b'{"pgn": 42, "timeleft": 1000}', 400, id="number-pgn"),
    pytest.param(b'{"pgn": null, "timeleft": 1000}', 400, id="null-pgn"),
    pytest.param(b'{"pgn": "1. e4 e4", "timeleft": 1000}', 422, id="illegal-move"),
    pytest.param(b'{"pgn": "1. e4 e5 2. Ke3", "timeleft": 1000}', 422, id="illegal-king-move"),
    pytest.param(b'{"pgn": "1. e4 e5 2. Qxf7 Kxf7 3. Zz9", "timeleft": 1000}', 422, id="illegal-then-junk"),
    pytest.param(b'{"pgn": "garbage that is no pgn", "timeleft": 1000}', 422, id="garbage"),
    pytest.param(b'{"pgn": "[Event \\"x\\"", "timeleft": 1000}', 422, id="broken-header"),
    pytest.param(b'{"pgn": "[FEN \\"not a fen\\"]\\n\\n*", "timeleft": 1000}', 422, id="bad-fen"),
    pytest.param(b'{"pgn": "[FEN \\"8/8/8/8/8/8/8/8 w - - 0 1\\"]\\n\\n*", "timeleft": 1000}', 422, id="no-kings"),
    pytest.param(b'{"pgn": "1. e4 -- 2. d4", "timeleft": 1000}', 422, id="null-move"),
    pytest.param(b'{"pgn": "[Variant \\"Atomic\\"]\\n\\n1. e4", "timeleft": 1000}', 422, id="variant"),
    pytest.param(b'{"pgn": "1. f3 e5 2. g4 Qh4#", "timeleft": 1000}', 422, id="checkmate"),
    pytest.param(b'{"pgn": "[FEN \\"7k/5Q2/6K1/8/8/8/8/8 b - - 0 1\\"]\\n\\n*", "timeleft": 1000}', 422, id="stalemate"),
    pytest.param(b'{"pgn": "[FEN \\"7k/8/6K1/8/8/8/8/8 w - - 0 1\\"]\\n\\n*", "timeleft": 1000}', 422, id="insufficient"),
    pytest.param(b'{"pgn": "[FEN \\"7k/8/6K1/8/8/8/8/R7 w - - 150 90\\"]\\n\\n*", "timeleft": 1000}', 422,
                 id="75-move-rule"),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
def test_bad_input_is_4xx_json_and_the_server_goes_on(client: httpx.Client, body: bytes, status: int) -> None:
    r = client.post("/move", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert isinstance(data["error"], str) and data["error"]
    assert data["move"] is None
    ok = client.post("/move", json={"pgn": "1. d4", "timeleft": 200})
    assert ok.status_code == 200 and ok.json()["error"] is None


def test_error_messages_say_what_is_wrong(client: httpx.Client) -> None:
    def error(body: bytes) -> str:
        return client.post("/move", content=body).json()["error"]

    assert "not JSON" in error(b"{nope")
    assert "timeleft" in error(b'{"pgn": ""}')
    assert "non-negative integer" in error(b'{"pgn": "", "timeleft": true}')
    assert "illegal" in error(b'{"pgn": "1. e4 e4", "timeleft": 5}')
    assert "over" in error(b'{"pgn": "1. f3 e5 2. g4 Qh4#", "timeleft": 5}')


def test_oversized_body_is_413(client: httpx.Client) -> None:
    r = client.post("/move", json={"pgn": "1. e4 " + " " * 1_100_000, "timeleft": 5})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_unknown_route_and_method_are_json(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = client.get("/move")
    assert r.status_code == 405 and "error" in r.json()
    r = client.get("/static/../serve.py")
    assert r.status_code == 404


def wait_until(condition, what: str, timeout: float = 10.0) -> None:  # noqa: ANN001
    """Poll for an observed condition, bounded (the server's event loop sets it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_move_sent_while_the_weights_load_waits_for_them_and_plays(tiny_bot) -> None:  # noqa: ANN001
    """The platform's devtools send the first /move as soon as POST / answers: it must not be lost."""
    gate = threading.Event()

    def slow_loader():  # noqa: ANN202
        assert gate.wait(30)
        return tiny_bot, ModelStatus(ModelState.READY, origin="random", device="cpu", net=tiny_bot.config.name)

    store = ModelStore(slow_loader)
    with LiveServer(create_app(ServeSettings(), store)) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/").json() == {"running": True}
        assert c.get("/health").json()["state"] == "loading"
        result: dict = {}
        mover = threading.Thread(target=lambda: result.update(r=c.post("/move", json={"pgn": "1. e4", "timeleft": 12_000})))
        mover.start()
        wait_until(lambda: store._waiters, "the move to wait for the weights")
        assert mover.is_alive()
        gate.set()
        mover.join(30)
        r = result["r"]
        assert r.status_code == 200, r.text
        board = chess.Board()
        board.push_san("e4")
        body = r.json()
        check_move_answer(body, board)
        assert "after waiting" in body["logs"] and len(body["move_probs"]) > 1  # searched with the network


def test_a_move_whose_wait_runs_out_still_gets_a_legal_move(tiny_bot) -> None:  # noqa: ANN001
    gate = threading.Event()

    def never_loads():  # noqa: ANN202
        gate.wait(30)
        raise ValueError("the test is over")

    store = ModelStore(never_loads)
    settings = ServeSettings(load_wait_fraction=0.1)
    with LiveServer(create_app(settings, store)) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        board = chess.Board()
        board.push_san("d4")
        r = c.post("/move", json={"pgn": "1. d4", "timeleft": 1000})  # waits at most 100 ms
        assert r.status_code == 200, r.text
        body = r.json()
        assert check_move_answer(body, board) and "without the network" in body["logs"]
        gate.set()


SECRET = "/home/someone/secret-place"


@pytest.mark.parametrize(("failure", "public"), [
    (NoWeightsError(f"no weights: nothing in {SECRET}"), "no weights to play with"),
    (ValueError(f"{SECRET}/model.pt holds an unusable network config"), "could not be loaded with these settings"),
    (RuntimeError(f"CUDA fell over in {SECRET}"), "internal error"),
])
def test_a_failed_load_is_503_in_public_words(failure: Exception, public: str) -> None:
    def loader():  # noqa: ANN202
        raise failure

    store = ModelStore(loader)
    with LiveServer(create_app(ServeSettings(), store)) as server, httpx.Client(base_url=server.url) as c:
        assert store.wait(10)
        r = c.post("/move", json={"pgn": "", "timeleft": 1000})
        assert r.status_code == 503 and public in r.json()["error"]
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["state"] == "failed" and public in h.json()["error"]
        for text in (r.text, h.text):
            assert SECRET not in text and "Error" not in text and "Traceback" not in text
        assert c.post("/move", content=b"nope").status_code == 400  # bad input is still 4xx first


def test_post_root_answers_during_a_long_search(client: httpx.Client, tiny_bot, monkeypatch) -> None:  # noqa: ANN001
    """The search runs off the event loop: the platform's liveness poll is answered meanwhile."""
    searching, release = hold_searches(tiny_bot, monkeypatch)
    result: dict = {}
    mover = threading.Thread(target=lambda: result.update(r=client.post("/move", json={"pgn": "", "timeleft": 8000})))
    mover.start()
    assert searching.acquire(timeout=10)
    with httpx.Client(base_url=client.base_url, timeout=5) as c2:
        assert c2.post("/").status_code == 200
        assert c2.get("/health").status_code == 200
    assert mover.is_alive()  # the search is still held: POST / did not wait for it
    release.set()
    mover.join(30)
    assert result["r"].status_code == 200


GAME_STEP_MS = 5.0
"""What one network call costs on the counting game's fake clock."""


def test_full_game_with_a_counting_clock(tiny_bot, monkeypatch) -> None:  # noqa: ANN001
    """Both sides through the server, start to end, each clock losing what each request took. The time is a
    fake clock that the server and the bot share and that moves only with network calls, so neither the
    flags nor the budgets depend on how busy the machine is; bench/serve.py measures the real overshoot."""
    clock = network_clock(tiny_bot, monkeypatch, GAME_STEP_MS)
    store = ModelStore.ready_with(tiny_bot, origin="random", note="test bot")
    policy = TimePolicy()
    board = chess.Board()
    clocks = {chess.WHITE: 4000.0, chess.BLACK: 4000.0}
    over_budget = []
    with LiveServer(create_app(ServeSettings(), store, clock=clock)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        while not board.is_game_over(claim_draw=True):
            left = clocks[board.turn]
            t0 = clock()
            r = client.post("/move", json={"pgn": pgn_of(board), "timeleft": int(left)})
            took = (clock() - t0) * 1000
            assert r.status_code == 200, r.text
            body = r.json()
            move = check_move_answer(body, board)
            assert body["time_taken"] == pytest.approx(took)  # the server counts on the same clock
            budget = policy.budget_ms(int(left))
            if body["time_taken"] > budget + GAME_STEP_MS + 1e-6:  # it stops within one step of its budget
                over_budget.append((board.ply(), int(left), round(budget), round(body["time_taken"])))
            clocks[board.turn] -= took
            assert clocks[board.turn] > 0, f"lost on time at ply {board.ply()}"
            board.push(move)
    assert board.outcome(claim_draw=True) is not None
    assert not over_budget, f"moves over their budget (ply, timeleft, budget, taken): {over_budget}"
