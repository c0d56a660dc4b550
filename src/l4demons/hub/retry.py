"""Retrying calls to a remote hub: bounded back-off that honours the server's ``Retry-After``.

One call (read the head, upload a commit, list commits...) is tried up to
:attr:`RetryPolicy.attempts` times. Between tries it waits what the server
asked for (HTTP ``Retry-After``, or the reset time of an exhausted
``RateLimit`` header, as the Hugging Face Hub sends with a 429), else an
exponential back-off with jitter, capped. The waits of one call never add up
to more than :attr:`RetryPolicy.budget` seconds: a server that asks for a
longer wait (the Hub's API quotas run in 5-minute windows) makes the call
give up at once, and the :class:`~l4demons.hub.base.HubUnavailable` it raises
carries that wait in ``retry_after``, so the trainer queues its commit in the
outbox and comes back no sooner than the server asked.

The waits go through the caller's ``sleep`` and an HTTP date is read
against its ``now`` (the real clock by default), so a test drives a fake
clock instead of waiting.

The environment sets the defaults (tests make them short):
``L4D_HF_RETRIES`` (attempts), ``L4D_HF_RETRY_DELAY`` (first delay, seconds),
``L4D_HF_RETRY_BUDGET`` (most seconds of waiting per call).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from l4demons.hub.base import HubError, HubUnavailable

logger = logging.getLogger("l4demons.hub.hf")

T = TypeVar("T")

_RATELIMIT = re.compile(r'"?(?P<kind>[\w-]+)"?\s*;\s*r\s*=\s*(?P<r>\d+)\s*;\s*t\s*=\s*(?P<t>\d+)')


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How one hub call is retried."""

    attempts: int = 4
    """Tries of one call, the first included."""
    delay: float = 1.0
    """Seconds before the first retry without a server hint; doubles each time (with jitter)."""
    max_delay: float = 30.0
    """Cap of one back-off wait without a server hint."""
    budget: float = 300.0
    """Most seconds one call waits in all; a longer ``Retry-After`` gives up at once (and says so)."""

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.delay < 0 or self.max_delay < 0 or self.budget < 0:
            raise HubError(f"Invalid retry policy {self!r}: attempts must be >= 1 and times >= 0.")

    @classmethod
    def from_env(cls, attempts: int | None = None, delay: float | None = None,
                 budget: float | None = None) -> RetryPolicy:
        """The policy of ``L4D_HF_RETRIES``/``L4D_HF_RETRY_DELAY``/``L4D_HF_RETRY_BUDGET``, arguments first."""
        return cls(
            attempts=max(1, attempts if attempts is not None else int(env_number("L4D_HF_RETRIES", cls.attempts))),
            delay=delay if delay is not None else env_number("L4D_HF_RETRY_DELAY", cls.delay),
            budget=budget if budget is not None else env_number("L4D_HF_RETRY_BUDGET", cls.budget),
        )

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based) when the server gave no hint."""
        return min(self.delay * 2 ** (attempt - 1), self.max_delay) * random.uniform(0.5, 1.0)


def call_with_retries(
    what: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    translate: Callable[[BaseException], HubError | None],
    retryable: Callable[[BaseException], bool],
    reason: Callable[[BaseException], str],
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> T:
    """Run ``fn`` under ``policy``; failures become our exceptions through ``translate``.

    An exception ``translate`` maps to None is not a hub failure and propagates as is. The waits go
    through ``sleep``; ``now`` is the Unix time an HTTP-date ``Retry-After`` is read against.

    :raises HubUnavailable: still failing after the retries (``retry_after`` set when the server asked to wait).
    :raises HubError: a failure a retry would not fix (auth, not found, conflict...).
    """
    waited = 0.0
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as err:
            mapped = translate(err)
            if mapped is None:
                raise
            hint = retry_after(err, now)
            if isinstance(mapped, HubUnavailable) and hint is not None:
                mapped.retry_after = hint
            if not isinstance(mapped, HubUnavailable) or not retryable(err) or attempt == policy.attempts:
                raise mapped from err
            delay = hint if hint is not None else policy.backoff(attempt)
            if waited + delay > policy.budget:
                logger.warning("[HF] %s failed (%s); the Hub asks to wait %.0fs, more than this call may (%.0fs): "
                               "giving up for now", what, reason(err), delay, policy.budget - waited)
                mapped.retry_after = delay
                raise mapped from err
            logger.warning("[HF] %s failed (%s); retry %d/%d in %.1fs%s", what, reason(err), attempt,
                           policy.attempts - 1, delay, " (as the Hub asked)" if hint is not None else "")
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


def retry_after(err: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked to wait before the next request, if the failure carries an answer that says so."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    return retry_after_headers(headers, getattr(response, "status_code", None), now)


def retry_after_headers(headers: Mapping[str, str], status: int | None = None,
                        now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` (seconds or an HTTP date, read against ``now``), else on a 429 the reset time of an
    exhausted ``RateLimit`` quota."""
    value = _header(headers, "retry-after")
    if value:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now())
    limit = _header(headers, "ratelimit")
    if status == 429 and limit and (m := _RATELIMIT.search(limit)) and int(m.group("r")) == 0:
        return float(m.group("t"))
    return None


def env_number(name: str, default: float) -> float:
    """A number from the environment; ``default`` when unset.

    :raises HubError: the variable is set but is not a number.
    """
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise HubError(f"{name}={text!r} is not a number; unset it or give seconds/attempts.") from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key in headers:
        if key.lower() == name:
            return headers[key]
    return None
