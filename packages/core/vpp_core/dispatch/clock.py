"""Clocks for the dispatch runner: time is injected (tests compress or simulate it).

``SystemClock`` is the one place dispatch reads the wall clock; the wiring passes it in.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["DispatchClock", "ScaledClock", "SystemClock"]


class DispatchClock(Protocol):
    """UTC time for windows and profiles, and a way to wait until a point in it."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    """Real time. Waits use the monotonic clock so wall-clock steps do not stretch them."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay_s = (when - self.now()).total_seconds()
        if delay_s > 0:
            await asyncio.sleep(delay_s)


class ScaledClock:
    """Compressed time for demos and tests: ``speed`` simulated seconds per real second."""

    def __init__(self, *, start: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._start = start
        self._speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    async def sleep_until(self, when: datetime) -> None:
        delay_s = (when - self.now()).total_seconds() / self._speed
        if delay_s > 0:
            await asyncio.sleep(delay_s)
