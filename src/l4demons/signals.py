"""Graceful stop: the first Ctrl-C (or SIGTERM) asks, the second insists.

The first signal sets a flag that self-play and backprop poll between
steps; the trainer then saves and commits and exits 0. The second exits at
once with status 130: every hub write is atomic, so the last commit stays
intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Iterator

log = logging.getLogger(__name__)


class StopFlag:
    """Set by a signal (or by code: tests, a time budget); polled by long loops."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def request(self, reason: str = "stop requested") -> None:
        self.reason = reason
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @contextlib.contextmanager
    def handle_signals(self) -> Iterator[StopFlag]:
        """Route SIGINT and SIGTERM to this flag while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def on_signal(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self.requested:
                log.warning("[TRAIN] second %s: exiting now; the hub keeps its last commit", name)
                os._exit(130)
            log.warning("[TRAIN] %s received: finishing this step, saving and uploading (again to exit at once)", name)
            self.request(name)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)
