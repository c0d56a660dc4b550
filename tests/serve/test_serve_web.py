"""The web page in a real headless browser (Debian's chromium driven by Playwright).

Needs ``pip install playwright`` and ``apt-get install chromium``; never
``playwright install`` (it downloads browsers). Leaves a screenshot in
tmp/test-artifacts/web-board.png.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import chess
import pytest

from l4demons.bot import Bot
from l4demons.server import ModelStore, ServeSettings, create_app

from serve_support import ARTIFACTS, TINY, LiveServer

CHROMIUM = os.environ.get("L4D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    bot = Bot.random(TINY, seed=7)
    bot.warmup()
    with LiveServer(create_app(ServeSettings(), ModelStore.ready_with(bot, origin="random"))) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser_page(site: str):  # noqa: ANN201
    with playwright_sync.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                       viewport={"width": 1100, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.errors = errors
        yield page
        context.close()


def square_center(page, square: str) -> tuple[float, float]:  # noqa: ANN001
    box = page.evaluate(
        f"(() => {{ const r = document.querySelector('#board rect[data-square={square}]').getBoundingClientRect();"
        " return {x: r.x + r.width / 2, y: r.y + r.height / 2} })()")
    return box["x"], box["y"]


def click(page, square: str) -> None:  # noqa: ANN001
    page.mouse.click(*square_center(page, square))


def drag(page, src: str, dst: str) -> None:  # noqa: ANN001
    page.mouse.move(*square_center(page, src))
    page.mouse.down()
    x, y = square_center(page, dst)
    page.mouse.move(x, y, steps=8)
    page.mouse.up()


def fen(page) -> str:  # noqa: ANN001
    return page.get_attribute("#board", "data-fen")


def wait_your_move(page, plies: int) -> None:  # noqa: ANN001
    """Until the game has ``plies`` half-moves and the page asks the person to move."""
    page.wait_for_function(
        f"window.l4d.state.game.history().length === {plies}"
        " && document.querySelector('#status').dataset.state === 'your-move'", timeout=15000)


def test_play_the_bot_in_the_browser(browser_page, site: str) -> None:  # noqa: ANN001
    page = browser_page
    page.goto(site + "/?clock=6000")  # 6 s each: quick bot moves
    page.wait_for_selector('#board rect[data-square="e2"]')
    page.wait_for_function("document.querySelector('#model').dataset.state === 'ready'", timeout=10000)
    page.select_option("#side", "white")
    assert page.input_value("#tc") == "6000"
    page.click("#new-game")
    wait_your_move(page, 0)
    start = fen(page)
    assert start.split()[0] == chess.Board().board_fen()

    click(page, "e2")  # an illegal move is refused on the page
    click(page, "e5")
    page.wait_for_function("document.querySelector('#status').dataset.state === 'illegal'")
    assert "Illegal" in page.text_content("#status") and fen(page) == start

    drag(page, "e2", "e4")  # by drag ...
    wait_your_move(page, 2)
    board = chess.Board()
    board.push_san("e4")
    reply = _bot_reply(page, board)
    assert page.locator("#probs li").count() >= 1
    assert page.locator("#probs li.played").count() == 1
    bot_clock = page.text_content("#bot-clock .time")
    assert bot_clock != "0:06.0"  # it counted down while the bot thought

    click(page, "d2")  # ... and by click
    click(page, "d4")
    wait_your_move(page, 4)
    board.push(reply)
    board.push_san("d4")
    _bot_reply(page, board)
    assert page.locator("#moves li").count() == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-board.png"))
    assert not page.errors, page.errors


def _bot_reply(page, board: chess.Board) -> chess.Move:  # noqa: ANN001
    """The bot's move as the page shows it: legal, and the board matches the game."""
    after = chess.Board(fen(page))
    board = board.copy()
    for move in list(board.legal_moves):
        board.push(move)
        if board.board_fen() == after.board_fen() and board.turn == after.turn:
            return move
        board.pop()
    raise AssertionError(f"the page shows {after.fen()}, which no legal bot move reaches from {board.fen()}")


def test_playing_black_the_bot_moves_first(browser_page, site: str) -> None:  # noqa: ANN001
    page = browser_page
    page.goto(site + "/?clock=6000")
    page.wait_for_selector('#board rect[data-square="e2"]')
    page.select_option("#side", "black")
    page.click("#new-game")
    wait_your_move(page, 1)
    board = chess.Board()
    _bot_reply(page, board)
    assert page.locator("#moves li").count() == 1
    assert not page.errors, page.errors
