"""The bot core as the front doors use it: budgets, stop, restrictions, several callers at once.

Budgets are kept on a fake clock that moves only when the network is
called (each call costs ``STEP_MS``), so the bounds are exact whatever else
the machine does. How far past its budget a move really goes, on a real
clock, is measured by ``bench/serve.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import chess
import pytest

from l4demons.bot import Bot, SearchInfo, TimePolicy

import serve_support
from serve_support import tiny_bot  # noqa: F401 - fixture


def test_time_policy_budget() -> None:
    p = TimePolicy()
    assert p.budget_ms(30_000) == pytest.approx(30_000 / 30 - 25)
    assert p.budget_ms(30_000, increment_ms=2000) == pytest.approx(1000 + 1500 - 25)
    assert p.budget_ms(1000, moves_to_go=1) == pytest.approx(250 - 25)  # never more than a quarter
    assert p.budget_ms(150) == 10.0  # the floor
    assert p.budget_ms(80) == 0.0 and p.budget_ms(0) == 0.0  # nothing to spare: one network call


STEP_MS = 5.0
"""What one network call costs on the fake clock."""


@pytest.fixture
def network_clock(tiny_bot: Bot, monkeypatch: pytest.MonkeyPatch) -> Callable[[], float]:
    """The bot's clock (seconds), moved only by its network calls, ``STEP_MS`` each."""
    return serve_support.network_clock(tiny_bot, monkeypatch, STEP_MS)


@pytest.mark.parametrize("time_left", [0, 150, 1500, 6000])
def test_clock_budget_is_kept(tiny_bot: Bot, network_clock: Callable[[], float], time_left: int) -> None:
    budget = tiny_bot.time_policy.budget_ms(time_left)
    for _ in range(3):
        t0, calls = network_clock(), tiny_bot.evaluator.calls
        move, probs = tiny_bot.choose_move(chess.Board(), time_left)
        took = (network_clock() - t0) * 1000
        assert move in chess.Board().legal_moves
        if budget == 0:  # nothing to spare: the root's network call only
            assert tiny_bot.evaluator.calls - calls == 1 and took == pytest.approx(STEP_MS)
        else:  # it stops when the next step would probably end past the budget: at most one step over
            assert took <= budget + STEP_MS + 1e-6, f"{took:.1f} ms for a {budget:.0f} ms budget"


def test_one_stalled_step_does_not_leave_later_searches_at_their_root(tiny_bot: Bot,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow spell (network calls at 100 ms) leaves a forecast that no step fits in a 100 ms move. Later
    searches must still take a step past their root, be timed again, and soon use their time: ended at the
    root instead, no full step would ever correct the forecast, and every move would be the bare policy."""
    costs = [100.0]  # ms a network call costs on the fake clock
    serve_support.network_clock(tiny_bot, monkeypatch, lambda: costs[0])
    monkeypatch.setattr(tiny_bot, "reuse_tree", False)  # every move starts at a bare root
    board = chess.Board("r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4")
    tiny_bot.choose_move(board, nodes=3 * tiny_bot.puct.batch_size)  # the slow spell
    costs[0] = STEP_MS
    calls = []
    for _ in range(10):
        before = tiny_bot.evaluator.calls
        tiny_bot.choose_move(board, movetime_ms=100)
        calls.append(tiny_bot.evaluator.calls - before)
    assert min(calls) >= 2, calls  # never the root alone
    assert calls[-1] >= 10, calls  # the forecast recovered: 100 ms buys about 20 calls of 5 ms


def test_single_legal_move_needs_no_network(tiny_bot: Bot) -> None:
    board = chess.Board("k7/8/1K6/8/8/8/8/7R b - - 0 1")
    calls = tiny_bot.evaluator.calls
    move, probs = tiny_bot.choose_move(board, 60_000)
    assert move == chess.Move.from_uci("a8b8") and probs == {"a8b8": 1.0}
    assert tiny_bot.evaluator.calls == calls


@pytest.mark.parametrize("limit", [{"movetime_ms": 60_000}, {"time_left_ms": 600_000}, {"depth": 5}])
def test_a_search_whose_every_line_ends_the_game_stops(tiny_bot: Bot, network_clock: Callable[[], float],
                                                        monkeypatch: pytest.MonkeyPatch, limit: dict) -> None:
    """Every move here draws by the fifty-move rule, so after the root no descent needs the network and the
    fake clock stands still: the search must stop because it has settled, not wait for a time that never
    comes (a game through the server hung on such a position). A guard turns a hang into a failure."""
    reads = [0]

    def guarded() -> float:
        reads[0] += 1
        assert reads[0] < 10_000, "the search went on with nothing left to evaluate"
        return network_clock()

    monkeypatch.setattr(tiny_bot, "clock", guarded)
    board = chess.Board("8/8/8/4k3/8/8/8/R3K3 w - - 99 80")
    calls = tiny_bot.evaluator.calls
    move, probs = tiny_bot.choose_move(board, **limit)
    assert move in board.legal_moves and sum(probs.values()) == pytest.approx(1.0)
    assert tiny_bot.evaluator.calls - calls == 1  # the root only: every child is a drawn end


def test_stop_ends_the_search(tiny_bot: Bot) -> None:
    """No limit but ``stop``: set once the search reports progress, it must end the search."""
    stop, result = threading.Event(), {}

    def on_info(info: SearchInfo) -> None:
        if info.nodes > 0:
            stop.set()

    searcher = threading.Thread(target=lambda: result.update(
        move=tiny_bot.choose_move(chess.Board(), stop=stop, on_info=on_info, info_interval_ms=1)[0]))
    searcher.start()
    searcher.join(10)
    assert not searcher.is_alive(), "the search went on after stop"
    assert stop.is_set() and result["move"] in chess.Board().legal_moves


def test_root_moves_and_depth(tiny_bot: Bot) -> None:
    allowed = [chess.Move.from_uci("b1c3"), chess.Move.from_uci("g2g3"), chess.Move.from_uci("e2e5")]  # e2e5 illegal
    move, probs = tiny_bot.choose_move(chess.Board(), nodes=60, root_moves=allowed)
    assert move in allowed[:2] and set(probs) == {"b1c3", "g2g3"}
    move, probs = tiny_bot.choose_move(chess.Board(), nodes=30, root_moves=[chess.Move.from_uci("e2e5")])
    assert len(probs) == 20  # none legal: the restriction is dropped
    infos: list[SearchInfo] = []
    tiny_bot.choose_move(chess.Board(), depth=3, on_info=infos.append)
    assert infos[-1].depth >= 3


def test_game_over_is_a_value_error(tiny_bot: Bot) -> None:
    board = chess.Board("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1")
    with pytest.raises(ValueError, match="over"):
        tiny_bot.choose_move(board, 1000)


def test_callers_at_once_share_network_calls_and_keep_their_budgets(tiny_bot: Bot,
                                                                   network_clock: Callable[[], float]) -> None:
    boards = [chess.Board(), chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"),
              chess.Board("8/8/4k3/8/2P5/8/3K4/8 w - - 0 1"),
              chess.Board("r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4")]
    # (no position with quick mates: the search ends those lines without the network, and its batches thin out)
    budget = tiny_bot.time_policy.budget_ms(6000)
    results: dict[int, tuple] = {}
    together = threading.Barrier(len(boards))

    def play(i: int) -> None:
        together.wait()
        t0 = network_clock()
        move, probs = tiny_bot.choose_move(boards[i], 6000)
        results[i] = (move, probs, (network_clock() - t0) * 1000)

    calls, evaluations = tiny_bot.evaluator.calls, tiny_bot.evaluator.evaluations
    threads = [threading.Thread(target=play, args=(i,)) for i in range(len(boards))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (move, probs, took) in results.items():
        assert move in boards[i].legal_moves and set(probs) == {m.uci() for m in boards[i].legal_moves}
        # the one fake clock moves at every caller's network call: between a search's look at its deadline and
        # its own call, each of the others may land one (a real clock runs them side by side)
        assert took <= budget + len(boards) * STEP_MS + 1e-6, f"{took:.1f} ms for a {budget:.0f} ms budget"
    batch = (tiny_bot.evaluator.evaluations - evaluations) / (tiny_bot.evaluator.calls - calls)
    assert batch > tiny_bot.puct.batch_size  # leaves of several searches in one call


def test_an_error_reaches_every_caller_and_the_bot_recovers(tiny_bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(leaves):  # noqa: ANN001, ANN202
        raise RuntimeError("device fell over")

    monkeypatch.setattr(tiny_bot.evaluator, "evaluate", broken)
    with pytest.raises(RuntimeError, match="fell over"):
        tiny_bot.choose_move(chess.Board(), nodes=10)
    monkeypatch.undo()
    move, _ = tiny_bot.choose_move(chess.Board(), nodes=10)
    assert move in chess.Board().legal_moves
