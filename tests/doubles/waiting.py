"""Waiting on a condition with a deadline (for state that has no event to await)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    predicate: Callable[[], bool], *, timeout_s: float = 10.0, poll_s: float = 0.02
) -> None:
    """Return as soon as ``predicate()`` holds; raise TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - state with no event of its own
            await asyncio.sleep(poll_s)
