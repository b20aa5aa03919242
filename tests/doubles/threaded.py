"""An asyncio test double (a server with ``async with``) run on its own event loop in a thread,
for synchronous tests that drive real processes (the daemon end-to-end tests)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["InThread"]


class InThread(Generic[T]):
    """``with InThread(lambda: ForeignCsms(...)) as running: running.run(coro_factory)``."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="test-double", daemon=True)
        self.double: Any = None
        self._error: BaseException | None = None

    def __enter__(self) -> InThread[T]:
        self._thread.start()
        if not self._ready.wait(15.0) or self._error is not None:
            raise RuntimeError(f"test double did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15.0)

    def run(self, work: Callable[[Any], Coroutine[Any, Any, T]], *, timeout_s: float = 30.0) -> T:
        """Run ``work(double)`` on the double's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(work(self.double), self._loop)
        return future.result(timeout_s)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self._make() as double:
                self.double = double
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
