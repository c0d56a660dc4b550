"""Graceful stop: the first Ctrl-C (or SIGTERM, or SIGUSR1) asks, a second one later insists.

The first signal sets a flag that self-play and backprop poll between
steps; the trainer then saves and commits and exits 0. SIGTERM is how a
scheduler (and Modal's preemption) asks; SIGUSR1 is how Modal cancels an
input, and ``train_modal.py`` passes it on. A second signal exits at once
with status 130: every hub write is atomic, so the last commit stays intact.

One stop, however many processes get the signal: a terminal's Ctrl-C
reaches the whole process group, and ``torchrun`` or ``train_modal.py``
passes the signal on to the trainer as well, so one stop can arrive two
or three times within moments. Signals within :data:`REPEAT_WINDOW_S` of
the first are that same stop; only a signal after it is a second one.

Child processes (self-play and game workers, teacher labellers, the
engines they drive) are deaf to these signals: a terminal's Ctrl-C, or
``timeout``, ``docker stop`` and systemd's SIGTERM, reach the whole process
group, and a child that died of it would take the cycle in flight with it.
The parent decides and stops its children itself. Start them inside
:func:`children_deaf_to_stop`, and have each call :func:`leave_stop_to_parent`
first thing; an engine goes into a session of its own (python-chess's
``setpgrp``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Callable, Iterator

log = logging.getLogger(__name__)

REPEAT_WINDOW_S = 1.0
"""Signals this soon after the first are copies of it (sent to several processes of one run), not a second ask."""

ORPHAN_POLL_S = 0.5
"""How often a child told its parent's pid looks whether that parent is still alive."""

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None)
"""What asks a run to stop (SIGUSR1: Modal's cancellation; absent on Windows)."""


class StopFlag:
    """Set by a signal (or by code: tests, a time budget); polled by long loops."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.requested_at: float | None = None
        """``time.monotonic()`` of the first request: where the time a stop may take is counted from."""
        self._callbacks: list[Callable[[], None]] = []

    def request(self, reason: str = "stop requested") -> None:
        first = self.requested_at is None
        if first:
            self.requested_at = time.monotonic()
        self.reason = reason
        self._event.set()
        if first:
            for callback in self._callbacks:
                callback()

    def on_request(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` at the first request (now, if it came already).

        It may run inside a signal handler, between any two lines of the
        main thread: it must only set a flag (a shared value children poll).
        """
        self._callbacks.append(callback)
        if self.requested:
            callback()

    def __call__(self) -> bool:
        return self._event.is_set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def seconds_left(self, budget: float) -> float:
        """Of ``budget`` seconds counted from the first request, how many are left (all of them if none came)."""
        if self.requested_at is None:
            return budget
        return max(0.0, budget - (time.monotonic() - self.requested_at))

    @contextlib.contextmanager
    def handle_signals(self) -> Iterator[StopFlag]:
        """Route :data:`STOP_SIGNALS` to this flag while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def on_signal(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self.requested_at is not None and time.monotonic() - self.requested_at < REPEAT_WINDOW_S:
                log.debug("[TRAIN] %s again within %.0fs: the same stop", name, REPEAT_WINDOW_S)
                return
            if self.requested:
                log.warning("[TRAIN] second %s: exiting now; the hub keeps its last commit", name)
                os._exit(130)
            log.warning("[TRAIN] %s received: finishing this step, saving and uploading (again to exit at once)", name)
            self.request(name)

        old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


@contextlib.contextmanager
def children_deaf_to_stop() -> Iterator[None]:
    """Child processes started in this block begin with :data:`STOP_SIGNALS` blocked.

    A spawned child spends seconds importing before its own code can ignore
    a signal; blocked, a group's signal waits, and :func:`leave_stop_to_parent`
    discards it. This process loses nothing: a signal that arrives meanwhile
    is taken by another thread, or by this one once the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups to share a signal with
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def leave_stop_to_parent(parent: int | None = None) -> None:
    """In a child process, first thing: ignore :data:`STOP_SIGNALS` (the parent decides and stops us).

    With ``parent`` (its pid), the child also exits within a second of that
    parent dying (a ``kill -9``, a second Ctrl-C): a deaf child would
    otherwise outlive it.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="l4d-exit-with-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_S)
    os._exit(0)  # nothing to save here: the parent owns the run's state; engines quit on their closed stdin
