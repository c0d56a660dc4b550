"""The UCI engine: the protocol through a scripted transport, then real games under python-chess.

No sleeps: a test waits for the line or the event it is about, and the
bounds on time are generous (seconds); the precise figures come from
``bench/uci_games.py``.
"""

from __future__ import annotations

import queue
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import chess
import chess.engine
import pytest

from l4demons.bot import Bot, TimePolicy, search_wdl
from l4demons.hub.local import LocalHub
from serve_support import TINY, tiny_hub  # noqa: F401 - fixture
from l4demons.uci import EngineFatal, UciEngine
from l4demons.uci_protocol import (EngineOptions, GoParams, UciError, parse_go, parse_position, score_cp,
                                   wdl_permille)


class Script:
    """A scripted GUI: lines in through ``engine.handle``, the engine's lines out through a queue."""

    def __init__(self, bot: Bot | None = None, error: Exception | None = None) -> None:
        self.out: queue.Queue[str] = queue.Queue()
        self.loads = 0

        def loader(options: EngineOptions):  # noqa: ANN202
            self.loads += 1
            if error is not None:
                raise error
            return bot, "test bot"

        self.engine = UciEngine(self.out.put, EngineOptions(), loader)

    def send(self, line: str) -> bool:
        return self.engine.handle(line)

    def expect(self, prefix: str, timeout: float = 10.0) -> tuple[str, list[str]]:
        """The first line starting with ``prefix`` and the lines seen before it."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.out.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line, before
            before.append(line)

    def drain(self) -> list[str]:
        lines = []
        while not self.out.empty():
            lines.append(self.out.get())
        return lines


@pytest.fixture(scope="module")
def uci_bot() -> Bot:
    """Its own bot: the engine changes the bot's time policy (Move Overhead)."""
    bot = Bot.random(TINY, seed=4)
    bot.warmup()
    return bot


@pytest.fixture
def gui(uci_bot: Bot) -> Script:
    uci_bot.time_policy = TimePolicy()
    script = Script(uci_bot)
    script.send("uci")
    script.expect("uciok")
    return script


def test_parse_go_reads_every_limit() -> None:
    p = parse_go("wtime 1000 btime 2000 winc 10 binc 20 movestogo 5 movetime 300 nodes 40 depth 3".split())
    assert p == GoParams(wtime=1000, btime=2000, winc=10, binc=20, movestogo=5, movetime=300, nodes=40, depth=3)
    assert parse_go(["infinite"]).infinite and parse_go(["ponder", "wtime", "5"]).ponder
    assert parse_go("searchmoves e2e4 d2d4 wtime -30".split()) == GoParams(wtime=0, searchmoves=("e2e4", "d2d4"))
    with pytest.raises(UciError):
        parse_go(["wtime", "soon"])
    with pytest.raises(UciError):
        parse_go(["sideways"])


def test_parse_position() -> None:
    board, problem = parse_position("startpos moves e2e4 e7e5 g1f3".split())
    assert problem is None and board.fen() == "rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2"
    board, problem = parse_position("fen 8/P7/8/8/8/8/8/k6K w - - 0 1 moves a7a8q".split())
    assert problem is None and board.piece_at(chess.A8) == chess.Piece(chess.QUEEN, chess.WHITE)
    board, problem = parse_position("startpos moves e2e4 e2e4".split())
    assert "illegal move 'e2e4'" in problem and board.move_stack == [chess.Move.from_uci("e2e4")]
    with pytest.raises(UciError):
        parse_position("fen not/a/fen w - - 0 1".split())
    with pytest.raises(UciError):
        parse_position(["sideways"])


def test_score_cp_is_monotone_and_bounded() -> None:
    assert score_cp(0.0) == 0 and score_cp(0.5) > 50 and score_cp(-0.5) == -score_cp(0.5)
    assert abs(score_cp(1.0)) < 20_000


def test_uci_handshake_lists_the_options() -> None:
    script = Script(None)
    script.engine._start_loading = lambda: None  # handshake only
    script.send("uci")
    line, before = script.expect("uciok")
    assert before[0].startswith("id name L4Demons")
    names = [ln.split(" type ")[0].removeprefix("option name ") for ln in before if ln.startswith("option name")]
    assert names == ["Hub", "File", "Device", "Threads", "Move Overhead", "AllowRandom", "UCI_ShowWDL"]
    assert "option name Device type combo default auto var auto var cpu var cuda" in before
    assert "option name UCI_ShowWDL type check default false" in before  # Stockfish's declaration


def test_isready_loads_the_bot_once(gui: Script) -> None:
    gui.send("isready")
    line, before = gui.expect("readyok")
    assert "info string test bot" in before
    gui.send("isready")
    gui.expect("readyok")
    assert gui.loads == 1


def test_changing_the_weights_options_reloads(gui: Script) -> None:
    gui.send("isready")
    gui.expect("readyok")
    gui.send("setoption name File value model.pt")
    gui.send("setoption name Move Overhead value 120")
    gui.send("isready")
    gui.expect("readyok")
    assert gui.loads == 2 and gui.engine.options.file == "model.pt"
    assert gui.engine._bot.time_policy.safety_ms == 120


def test_bad_options_and_commands_are_reported_not_fatal(gui: Script) -> None:
    for line in ("setoption name Device value gpu", "setoption name Threads value many", "setoption name Hash value 16",
                 "frobnicate", "go wtime soon", "position sideways"):
        assert gui.send(line)
        reply, _ = gui.expect("info string")
        assert "error" in reply or "unknown" in reply
    gui.send("isready")
    gui.expect("readyok")


def test_go_movetime_sends_info_and_a_legal_bestmove(gui: Script) -> None:
    gui.send("position startpos moves e2e4")
    gui.send("go movetime 300")
    line, before = gui.expect("bestmove", timeout=5)  # a movetime ignored would search forever
    move = chess.Move.from_uci(line.split()[1])
    board = chess.Board()
    board.push_san("e4")
    assert move in board.legal_moves
    infos = [ln for ln in before if ln.startswith("info depth")]
    assert infos and all(k in infos[-1].split() for k in ("depth", "seldepth", "nodes", "nps", "time", "score", "pv"))


@pytest.mark.parametrize("moves, mine, inc", [("", 45_000, 100), (" moves e2e4", 600_000, 2000)])
def test_go_with_a_clock_spends_its_budget_from_the_side_to_moves_clock(gui: Script, uci_bot: Bot, monkeypatch,
                                                                         moves: str, mine: int, inc: int) -> None:
    """White has 45 s, Black 10 minutes: the search gets the side to move's clock and increment (how the bot
    keeps a budget on its clock is tests/serve/test_serve_bot.py's, on a fake clock)."""
    asked: list[tuple] = []
    real = uci_bot.choose_move

    def recorded(board, time_left_ms=None, **kw):  # noqa: ANN001, ANN202
        asked.append((time_left_ms, kw["increment_ms"]))
        return real(board, nodes=8, stop=kw["stop"], on_info=kw["on_info"])

    monkeypatch.setattr(uci_bot, "choose_move", recorded)
    gui.send("position startpos" + moves)
    gui.send("go wtime 45000 btime 600000 winc 100 binc 2000")
    gui.expect("bestmove", timeout=30)
    assert asked == [(mine, inc)]


class ParkedEvent(threading.Event):
    """An event that tells when someone waits on it (the search thread parking until ``stop``)."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.parked.set()
        return super().wait(timeout)


def test_stop_is_honoured_and_isready_answers_while_searching(gui: Script) -> None:
    gui.send("position startpos")
    gui.send("go infinite")
    gui.expect("info depth", timeout=5)  # the search is running
    gui.send("isready")
    gui.expect("readyok", timeout=5)
    assert not any(ln.startswith("bestmove") for ln in gui.drain())  # infinite: no bestmove before stop
    gui.send("stop")
    gui.expect("bestmove", timeout=5)  # an infinite search that ignored stop would never answer


def test_infinite_with_a_single_legal_move_still_waits_for_stop(gui: Script) -> None:
    gui.engine._released = released = ParkedEvent()
    gui.send("position fen k7/8/1K6/8/8/8/8/7R b - - 0 1")
    gui.send("go infinite")
    assert released.parked.wait(5)  # the move is known; the search thread now waits for stop
    assert not any(ln.startswith("bestmove") for ln in gui.drain())
    gui.send("stop")
    line, _ = gui.expect("bestmove")
    assert line == "bestmove a8b8"


def test_go_nodes_depth_and_searchmoves(gui: Script) -> None:
    gui.send("position startpos")
    gui.send("go nodes 50 searchmoves a2a3 h2h4")
    line, _ = gui.expect("bestmove")
    assert line.split()[1] in ("a2a3", "h2h4")
    gui.send("go depth 2")
    line, before = gui.expect("bestmove")
    assert chess.Move.from_uci(line.split()[1]) in chess.Board().legal_moves


LOST = "7k/1p6/6K1/8/8/8/8/R7 b - - 0 1"
"""Black to move; every move allows Ra8#, so a few thousand visits back up a value near -1."""


def wdl_agrees(wdl: tuple[int, int, int], cp: int) -> bool:
    """Per-mille W/D/L summing to 1000, W - L of the score's sign (either may be 0)."""
    return all(x >= 0 for x in wdl) and sum(wdl) == 1000 and (wdl[0] - wdl[2]) * cp >= 0


def test_search_wdl_is_the_value_with_the_heads_draw_share() -> None:
    head = (0.2, 0.5, 0.3)
    for value in (-1.0, -0.9, -0.1, 0.0, 0.002, 0.3, 0.95, 1.0):
        w, d, lo = search_wdl(value, head)
        assert min(w, d, lo) >= 0 and abs(w + d + lo - 1) < 1e-9 and abs((w - lo) - value) < 1e-9
        assert d == min(0.5, 1 - abs(value))
        assert wdl_agrees(wdl_permille((w, d, lo)), score_cp(value))
    assert wdl_permille((0.4995, 0.0, 0.5005)) in ((499, 0, 501), (500, 0, 500))
    assert wdl_permille((1.0, 0.0, 0.0)) == (1000, 0, 0)


def info_fields(line: str) -> dict[str, list[str]]:
    words, out, key = line.split()[1:], {}, None
    for word in words:
        if word in ("depth", "seldepth", "nodes", "nps", "time", "score", "wdl", "pv"):
            key = word
            out[key] = []
        else:
            out[key].append(word)
    return out


def test_uci_show_wdl_adds_wdl_to_the_info_lines(gui: Script) -> None:
    gui.send(f"position fen {LOST}")
    gui.send("go nodes 4000")
    _, before = gui.expect("bestmove")
    infos = [info_fields(ln) for ln in before if ln.startswith("info depth")]
    assert infos and not any("wdl" in info for info in infos)  # off by default, as in Stockfish
    gui.send("setoption name UCI_ShowWDL value true")
    for fen in (LOST, chess.STARTING_FEN):
        gui.send(f"position fen {fen}")
        gui.send("go nodes 4000")
        _, before = gui.expect("bestmove")
        assert not any(ln.startswith("info string error") for ln in before)
        infos = [info_fields(ln) for ln in before if ln.startswith("info depth")]
        assert infos and all("wdl" in info for info in infos)
        for info in infos:
            wdl, cp = tuple(int(x) for x in info["wdl"]), int(info["score"][1])
            assert wdl_agrees(wdl, cp), (wdl, cp)
        if fen == LOST:
            assert cp < -300 and wdl[2] > wdl[0]  # the side to move (Black) is lost, in both
    gui.send("position fen k7/8/1K6/8/8/8/8/7R b - - 0 1")  # a single legal move: the network's own view
    gui.send("go movetime 100")
    line, before = gui.expect("bestmove")
    assert line == "bestmove a8b8"
    (info,) = [info_fields(ln) for ln in before if ln.startswith("info depth")]
    assert wdl_agrees(tuple(int(x) for x in info["wdl"]), int(info["score"][1]))


def test_go_when_the_game_is_over(gui: Script) -> None:
    gui.send("position startpos moves f2f3 e7e5 g2g4 d8h4")
    gui.send("go movetime 100")
    line, _ = gui.expect("bestmove")
    assert line == "bestmove (none)"


def test_go_while_searching_is_refused(gui: Script) -> None:
    gui.send("go infinite")
    gui.send("go movetime 10")
    reply, _ = gui.expect("info string error")
    assert "already searching" in reply
    gui.send("stop")
    gui.expect("bestmove")


def test_a_go_right_after_bestmove_starts_a_search(uci_bot: Bot) -> None:
    """The GUI answers ``bestmove`` from inside the engine's own write, before the search thread has
    returned from it: the fastest a ``go`` can follow. 100 times in a row, each must start a search."""
    lines: queue.Queue[str] = queue.Queue()
    searches = [0]
    engine: UciEngine

    def send(line: str) -> None:
        lines.put(line)
        if line.startswith("bestmove") and searches[0] < 100:
            searches[0] += 1
            engine.handle("position startpos")
            engine.handle("go nodes 2")

    engine = UciEngine(send, EngineOptions(), lambda options: (uci_bot, "test bot"))
    engine.handle("go nodes 2")
    seen = []
    while len(seen) < 101:
        line = lines.get(timeout=10)
        assert not line.startswith("info string error"), line
        if line.startswith("bestmove"):
            seen.append(line)
    engine.close()
    assert all(chess.Move.from_uci(ln.split()[1]) in chess.Board().legal_moves for ln in seen)


def instant_reply(board: chess.Board, rng: random.Random) -> chess.Move:
    """The instant opponent: a capture when there is one, else any move."""
    moves = list(board.legal_moves)
    captures = [m for m in moves if board.is_capture(m)]
    return rng.choice(captures or moves)


def test_a_whole_game_against_an_instant_opponent_through_a_scripted_transport(uci_bot: Bot) -> None:
    """Every reply is made and the next ``go`` sent inside the engine's write of ``bestmove``."""
    board, rng = chess.Board(), random.Random(1)
    over, problems = threading.Event(), []
    engine: UciEngine

    def send(line: str) -> None:
        if line.startswith("info string"):
            problems.append(line)
        if not line.startswith("bestmove"):
            return
        move = chess.Move.from_uci(line.split()[1])
        if move not in board.legal_moves:
            problems.append(f"illegal {line} in {board.fen()}")
            return over.set()
        board.push(move)
        if not board.is_game_over(claim_draw=True):
            board.push(instant_reply(board, rng))
        if board.is_game_over(claim_draw=True):
            return over.set()
        engine.handle("position startpos moves " + " ".join(m.uci() for m in board.move_stack))
        engine.handle("go movetime 5")

    engine = UciEngine(send, EngineOptions(), lambda options: (uci_bot, "test bot"))
    engine.handle("isready")
    engine.handle("position startpos")
    engine.handle("go movetime 5")
    assert over.wait(120), f"the game stopped at ply {board.ply()}: {problems}"
    engine.close()
    assert problems == ["info string test bot"]
    assert board.outcome(claim_draw=True) is not None


def test_quit_stops_the_search(gui: Script) -> None:
    gui.send("go infinite")
    assert gui.send("quit") is False
    gui.expect("bestmove", timeout=2)


def test_no_weights_is_fatal_with_the_reason() -> None:
    script = Script(error=ValueError("no weights to play with: nothing here"))
    script.send("uci")
    script.expect("uciok")
    with pytest.raises(EngineFatal, match="no weights"):
        script.send("isready")
    reply, _ = script.expect("info string error")
    assert "no weights" in reply


# -- the real process ----------------------------------------------------------


def engine_command(hub: Path) -> list[str]:
    return [sys.executable, "-m", "l4demons", "uci", "--hub", str(hub), "--device", "cpu"]


def test_process_without_weights_exits_2_with_the_reason(tmp_path: Path) -> None:
    proc = subprocess.run(engine_command(tmp_path / "empty"), input="uci\nisready\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "uciok" in proc.stdout and "info string error: no weights" in proc.stdout
    assert "no weights" in proc.stderr


def stockfish_path() -> str | None:
    from l4demons.elo.engines import find_stockfish

    try:
        return find_stockfish()
    except Exception:  # noqa: BLE001 - any failure to find it means skip
        return None


@pytest.mark.skipif(stockfish_path() is None, reason="Stockfish is not installed (apt-get install stockfish)")
def test_a_complete_game_against_stockfish_under_python_chess(tiny_hub: LocalHub) -> None:
    """Short time control, each side's real clock; any protocol error or flag fails the test."""
    bot = chess.engine.SimpleEngine.popen_uci(engine_command(tiny_hub.path), timeout=60)
    sf = chess.engine.SimpleEngine.popen_uci(stockfish_path(), timeout=30)
    try:
        bot.configure({"Threads": 1})
        sf.configure({"Threads": 1, "Hash": 16, "Skill Level": 0})
        assert bot.id["name"].startswith("L4Demons")
        board = chess.Board()
        clock = {chess.WHITE: 5.0, chess.BLACK: 5.0}
        inc = 0.05
        players = {chess.WHITE: bot, chess.BLACK: sf}
        while not board.is_game_over(claim_draw=True):
            limit = chess.engine.Limit(white_clock=clock[chess.WHITE], black_clock=clock[chess.BLACK],
                                       white_inc=inc, black_inc=inc)
            t0 = time.perf_counter()
            result = players[board.turn].play(board, limit, info=chess.engine.INFO_ALL)
            clock[board.turn] -= time.perf_counter() - t0
            assert clock[board.turn] > 0, f"{'bot' if board.turn == chess.WHITE else 'stockfish'} lost on time"
            clock[board.turn] += inc
            assert result.move in board.legal_moves
            board.push(result.move)
        assert board.outcome(claim_draw=True) is not None
    finally:
        bot.quit()
        sf.quit()


def test_uci_show_wdl_under_python_chess(tiny_hub: LocalHub) -> None:
    """python-chess as the GUI: no ``wdl`` by default; with ``UCI_ShowWDL`` it parses one from every search."""
    bot = chess.engine.SimpleEngine.popen_uci(engine_command(tiny_hub.path), timeout=60)
    try:
        bot.configure({"Threads": 1})
        lost = chess.Board(LOST)
        info = bot.analyse(lost, chess.engine.Limit(nodes=4000), info=chess.engine.INFO_ALL)
        assert "score" in info and "wdl" not in info
        bot.configure({"UCI_ShowWDL": True})
        info = bot.analyse(lost, chess.engine.Limit(nodes=4000), info=chess.engine.INFO_ALL)
        wdl, score = info["wdl"].relative, info["score"].relative
        assert wdl.total() == 1000 and wdl_agrees((wdl.wins, wdl.draws, wdl.losses), score.score())
        assert score.score() < -300 and wdl.losses > wdl.wins and wdl.expectation() < 0.2  # Black is lost
        assert info["wdl"].white().wins == wdl.losses  # side to move's view, as Stockfish reports it
        board = chess.Board()
        result = bot.play(board, chess.engine.Limit(nodes=200), info=chess.engine.INFO_ALL)
        assert result.move in board.legal_moves
        wdl, score = result.info["wdl"].relative, result.info["score"].relative
        assert wdl.total() == 1000 and wdl_agrees((wdl.wins, wdl.draws, wdl.losses), score.score())
    finally:
        bot.quit()


def test_a_whole_game_against_an_instant_opponent_under_python_chess(tiny_hub: LocalHub) -> None:
    """python-chess sends the next ``go`` as soon as it reads ``bestmove`` (0.02 s a move); a refused
    ``go`` would leave it waiting for a ``bestmove`` that never comes (a TimeoutError here)."""
    bot = chess.engine.SimpleEngine.popen_uci(engine_command(tiny_hub.path), timeout=60)
    try:
        bot.configure({"Threads": 1})
        board, rng = chess.Board(), random.Random(2)
        while not board.is_game_over(claim_draw=True):
            if board.turn == chess.WHITE:
                move = bot.play(board, chess.engine.Limit(time=0.02)).move
                assert move in board.legal_moves, f"illegal {move} in {board.fen()}"
            else:
                move = instant_reply(board, rng)
            board.push(move)
    finally:
        bot.quit()
