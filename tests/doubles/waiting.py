"""Waiting on a condition with a deadline (for state that has no event to await)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    predicate: Callable[[], bool], *, timeout_s: float = 10.0, poll_s: float = 0.02
) -> None:
    """Return as soon as ``predicate()`` holds; raise TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - state with no event of its own
            await asyncio.sleep(poll_s)


def wait_for(probe: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll ``probe`` (blocking) until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


async def eventually_async(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, poll_s: float = 0.05
) -> None:
    """:func:`eventually` for a check that must await (a database query, an HTTP GET)."""
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - state with no event of its own
            await asyncio.sleep(poll_s)
