"""Progress bars that suit where the output goes.

On a terminal a tqdm bar redraws in place. Into a file (a log of a
30-minute warm start, ``nohup``, Modal's log stream) a redrawn bar is
thousands of carriage-return updates on one line, so there the same calls
write one plain log line now and then (every :data:`LOG_EVERY` seconds)
and, if any was written, one at the end. The clock is injectable, so tests drive it.

Usage, the same in both places::

    with progress(total=steps, desc="[TRAIN] backprop", unit="step") as bar:
        bar.update(1)
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm

log = logging.getLogger("l4demons.progress")

LOG_EVERY = 60.0
"""Seconds between two lines of a progress bar written into a file."""


class LineProgress:
    """A progress bar for files: a log line every ``every`` seconds of ``clock``, and one when a long one closes."""

    def __init__(self, total: float | None, desc: str, unit: str, every: float = LOG_EVERY,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.clock, self.logger = clock, logger
        self.n = 0.0
        self.start = self.last = clock()
        self.lines = 0
        """Lines written so far."""

    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def close(self) -> None:
        """A last line, for a bar that wrote any (short work says nothing: its caller logs the result)."""
        if self.lines and self.n:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        done = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        self.logger.info("%s: %s %s in %.0fs (%.1f %s/s)", self.desc, done, self.unit, elapsed, self.n / elapsed,
                         self.unit)
        self.lines += 1

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(total: float | None = None, desc: str = "", unit: str = "it", *, enabled: bool = True,
             stream: TextIO | None = None, every: float = LOG_EVERY,
             clock: Callable[[], float] = time.monotonic) -> tqdm | LineProgress:
    """A tqdm bar on a terminal, a :class:`LineProgress` elsewhere, nothing at all when not ``enabled``."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return tqdm(total=total, disable=True)
    if _is_terminal(stream):
        return tqdm(total=total, desc=desc, unit=unit, ascii=True, leave=False, file=stream)
    return LineProgress(total, desc, unit, every, clock)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stream-like object without a terminal behind it
        return False
