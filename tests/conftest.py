"""Shared fixtures: small networks and a uniform evaluator, so tests stay fast."""

from __future__ import annotations

import logging

import pytest
import torch

from l4demons.encoding import POLICY_SIZE


class UniformNet(torch.nn.Module):
    """Equal priors everywhere and a value of zero: search alone must find tactics."""

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = planes.shape[0]
        return torch.zeros(n, POLICY_SIZE), torch.zeros(n, 3)


@pytest.fixture
def uniform_net() -> UniformNet:
    return UniformNet()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """A test that runs ``l4demons.cli.main`` in this process has its logging pointed at the captured stdout,
    which pytest closes after the test: put the root logger back, so no later test logs to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)

