"""Reading a request body from the network without trusting it.

The body is counted while it streams in, chunked or not: past the limit
nothing more is kept, so a 20 MB or endless body costs no memory beyond
the limit. A declared ``Content-Length`` over the limit is refused before
a byte is read; a client that sent ``Expect: 100-continue`` is then never
asked for the body at all.

Refusing a body the client is still sending needs care: a server that
closes the connection while bytes are in flight makes the client's kernel
see a reset, and most clients (httpx, requests) then report a broken
connection instead of the 413. So the rest of an oversized body is read
and thrown away for a bounded time and amount (:data:`DRAIN_SECONDS`,
:data:`DRAIN_BYTES`), and the answer closes the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

DRAIN_SECONDS = 2.0
"""Longest time spent reading and discarding the rest of an oversized body before answering."""
DRAIN_BYTES = 64 << 20
"""Most bytes of an oversized body read and discarded; past that the connection is closed."""


class BodyError(Exception):
    """The body cannot be used; ``status`` is the HTTP answer and the message says why."""

    status = 400


class BodyTooLarge(BodyError):
    status = 413


class BodyTimeout(BodyError):
    status = 408


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, at most ``limit`` bytes, received within ``timeout_s`` seconds.

    :raises BodyTooLarge: declared or streamed over ``limit`` (the rest has been drained, within bounds).
    :raises BodyTimeout: not received whole in time.
    :raises BodyError: the client went away.
    """
    declared = request.headers.get("content-length", "")
    chunks = request.stream()
    if declared.isdigit() and int(declared) > limit:
        if request.headers.get("expect", "").lower() != "100-continue":
            await _drain(chunks)
        raise BodyTooLarge(f"body of {int(declared):,} bytes is over the {limit:,}-byte limit")
    parts: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                return
            parts.append(chunk)

    try:
        await asyncio.wait_for(collect(), timeout_s)
    except asyncio.TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        raise BodyError("the client went away before sending the whole body") from None
    if size > limit:
        await _drain(chunks)
        raise BodyTooLarge(f"body of more than {limit:,} bytes is over the {limit:,}-byte limit (read as it streamed)")
    return b"".join(parts)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read and forget what is left of a body, within :data:`DRAIN_SECONDS` and :data:`DRAIN_BYTES`."""

    async def discard() -> None:
        seen = 0
        async for chunk in chunks:
            seen += len(chunk)
            if seen > DRAIN_BYTES:
                return

    try:
        await asyncio.wait_for(discard(), DRAIN_SECONDS)
    except (asyncio.TimeoutError, ClientDisconnect):
        pass
