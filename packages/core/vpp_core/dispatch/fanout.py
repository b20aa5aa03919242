"""Send many station commands concurrently, with bounded concurrency and a per-call timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["fan_out"]

T = TypeVar("T")


async def fan_out(
    calls: Sequence[Callable[[], Awaitable[T]]], *, concurrency: int, timeout_s: float
) -> list[T | Exception]:
    """Run ``calls`` with at most ``concurrency`` in flight; results keep the calls' order.

    A call that raises (CALLERROR, timeout, lost connection) yields its exception instead of a
    result, so one bad station never stops the others.
    """
    results: list[T | Exception] = [TimeoutError("not run")] * len(calls)
    pending = iter(range(len(calls)))

    async def worker() -> None:
        for i in pending:
            try:
                async with asyncio.timeout(timeout_s):
                    results[i] = await calls[i]()
            except Exception as exc:
                results[i] = exc

    async with asyncio.TaskGroup() as tg:
        for n in range(min(concurrency, len(calls))):
            tg.create_task(worker(), name=f"dispatch-fanout-{n}")
    return results
