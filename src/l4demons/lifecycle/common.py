"""What every part of the training run shares: its error type, the messages, small formatters."""

from __future__ import annotations

import platform

INITIAL_MESSAGE = "Initial model weights (randomly initialized)"


class TrainError(Exception):
    """A training run that cannot start or go on; the message says what to do."""


def machine_name() -> str:
    return platform.node() or "unknown"


def elo_text(elo: float | None) -> str:
    return "n/a" if elo is None else f"{elo:.0f}"


def cycles_text(cycles: list[int]) -> str:
    return ", ".join(str(c) for c in cycles)
