"""The bot on the compiled core: the same answers as on the Python reference, and a warm thread per caller."""

from __future__ import annotations

import threading

import chess
import pytest
import torch

from l4demons.bot import Bot
from l4demons.search.compiled import CompiledPuct
from l4demons.search.play import ReferencePuct, puct_search

from core_support import Float64Net, require_core


class Recording(torch.nn.Module):
    """Wraps a network and notes which thread ran each forward pass, on how many positions."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.cfg = net.cfg
        self.calls: list[tuple[int, int]] = []

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append((threading.get_ident(), planes.shape[0]))
        return self.net(planes)


def test_the_bot_searches_with_the_core_and_agrees_with_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    require_core()
    bot = Bot(Float64Net("tiny", seed=5))
    board = chess.Board("r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4")
    assert isinstance(puct_search(board), CompiledPuct)
    compiled = bot.choose_move(board, nodes=200)
    monkeypatch.setenv("L4D_CORE", "0")
    assert isinstance(puct_search(board), ReferencePuct)
    reference = bot.choose_move(board, nodes=200)
    assert compiled[0] == reference[0]
    assert compiled[1].keys() == reference[1].keys()
    assert all(abs(compiled[1][m] - reference[1][m]) < 1e-6 for m in compiled[1])


def test_a_new_caller_thread_runs_the_network_once_before_its_search() -> None:
    net = Recording(Float64Net("tiny", seed=5))
    bot = Bot(net, backend="eager")  # the calls are counted in the module itself
    calls_before = bot.evaluator.calls
    done = []
    thread = threading.Thread(target=lambda: done.append(bot.choose_move(chess.Board(), nodes=40)))
    thread.start()
    thread.join()
    mine = [rows for tid, rows in net.calls if tid == thread.ident]
    assert done and mine[0] == 1  # the warm-up: one position
    assert len(mine) == bot.evaluator.calls - calls_before + 1  # and it is not counted as an evaluation
