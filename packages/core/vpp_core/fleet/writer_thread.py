"""The write-behind's database work on a thread of its own, off the OCPP event loop.

SQLAlchemy turns each row into driver parameters in Python, on the loop that awaits it:
thousands of rows per write block the OCPP loop for tens of milliseconds (measured with
benchmarks/csms_load.py at 10,000 stations). Here the store lives on a second event loop in
a dedicated thread; the OCPP loop only awaits a future. The GIL still serialises Python
work, but the interpreter hands it over every ``sys.getswitchinterval()`` (5 ms), so a large
write no longer stalls message handling for its whole duration.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from vpp_core.fleet.store import FleetStore, WriteBatch, WriteReport

__all__ = ["StoreThread"]

T = TypeVar("T")


class StoreThread:
    """A :class:`FleetStore` opened and used on its own thread. ``await start()`` first."""

    def __init__(self, url: str, *, quarantine_file: Path | None = None) -> None:
        self._url = url
        self._quarantine_file = quarantine_file
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fleet-writer", daemon=True
        )
        self._store: FleetStore | None = None

    async def start(self) -> None:
        self._thread.start()
        self._store = await self._on_thread(
            FleetStore.open(self._url, quarantine_file=self._quarantine_file)
        )

    async def _on_thread(self, coro: Awaitable[T]) -> T:
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop)
        return await asyncio.wrap_future(future)

    async def run(self, action: Callable[[FleetStore], Awaitable[T]]) -> T:
        """Run ``action(store)`` on the store's thread and return its result."""
        assert self._store is not None, "StoreThread not started"
        return await self._on_thread(action(self._store))

    async def write(self, batch: WriteBatch) -> WriteReport:
        return await self.run(lambda store: store.write(batch))

    async def close(self) -> None:
        if self._store is not None:
            await self._on_thread(self._store.close())
            self._store = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 10)
        self._loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
