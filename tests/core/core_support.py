"""Helpers for the compiled-core tests: the core itself, and a network whose answers do not depend on the batch."""

from __future__ import annotations

import os

import chess
import pytest
import torch

from l4demons import core
from l4demons.encoding import POLICY_SIZE, move_to_index
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator, run_step


def allows_mate_in_one(board: chess.Board, move: chess.Move) -> bool:
    """Whether after ``move`` the other side has a move that mates."""
    after = board.copy()
    after.push(move)
    return any(is_mate(after, reply) for reply in list(after.legal_moves))


def is_mate(board: chess.Board, move: chess.Move) -> bool:
    """Whether ``move`` checkmates."""
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def require_core():
    """The compiled module; a test fails when it is missing (CI must build it), unless L4D_CORE=0 says to skip."""
    if os.environ.get("L4D_CORE", "1").strip() == "0":
        pytest.skip("compiled core switched off (L4D_CORE=0)")
    return core.module()


class Float64Net(torch.nn.Module):
    """A random network run in float64: each position's outputs are the same whatever batch it is in.

    float32 convolutions may round differently for different batch sizes, and
    a search that evaluates its leaves in other batches would then see other
    last bits; comparisons of two searches want the same answers for the same
    position, wherever it was evaluated.
    """

    def __init__(self, name: str = "tiny", seed: int = 3) -> None:
        super().__init__()
        self.net = build_network(NetConfig.from_name(name), seed=seed).double().eval()
        self.cfg = self.net.cfg

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        policy, wdl = self.net(planes.double())
        return policy.float(), wdl.float()


class BlindToMove(torch.nn.Module):
    """A policy that all but rules out one move (logit -30 against 0 elsewhere) and a value of zero.

    What a trained net does to a mate it never saw played: without help the
    search would not visit it in a lifetime.
    """

    def __init__(self, board: chess.Board, uci: str) -> None:
        super().__init__()
        self.index = move_to_index(chess.Move.from_uci(uci), board.turn)

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = planes.shape[0]
        policy = torch.zeros(n, POLICY_SIZE)
        policy[:, self.index] = -30.0
        return policy, torch.zeros(n, 3)


def run_play(search, evaluator: Evaluator, visits: int):  # noqa: ANN001, ANN201 - a play search
    """Steps ``search`` (one of the play searches) until it holds ``visits`` visits or is done."""
    buffers = evaluator.new_buffers()
    while search.visits < visits and not search.done:
        run_step([search], evaluator, buffers)
    return search
