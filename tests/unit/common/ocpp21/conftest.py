"""A scripted in-memory peer for endpoint tests: feed it raw frames, read what was sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK

from v2g_common.ocpp21 import OcppEndpoint

WAIT_S = 2.0


class ScriptedConnection:
    """What an endpoint needs of a websocket; the test plays the raw-JSON peer."""

    def __init__(self, subprotocol: str = "ocpp2.1") -> None:
        self.subprotocol = subprotocol
        self._inbound: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[str] = []
        self._read = 0
        self._sent_changed = asyncio.Event()

    # -- the endpoint's side --
    async def recv(self) -> str | bytes:
        item = await self._inbound.get()
        if item is None:
            self._inbound.put_nowait(None)  # stays closed
            raise ConnectionClosedOK(None, None)
        return item

    async def send(self, message: str) -> None:
        assert isinstance(message, str), "OCPP-J frames are text frames"
        self.sent.append(message)
        self._sent_changed.set()

    # -- the test's side --
    def feed(self, frame: Any) -> None:
        """Queue one received frame: a str/bytes as is, anything else as JSON."""
        self._inbound.put_nowait(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    def close(self) -> None:
        self._inbound.put_nowait(None)

    async def next_sent(self, timeout_s: float = WAIT_S) -> list[Any]:
        """The next frame the endpoint sent (decoded), waiting for it."""
        async with asyncio.timeout(timeout_s):
            while self._read >= len(self.sent):
                self._sent_changed.clear()
                await self._sent_changed.wait()
        self._read += 1
        decoded: list[Any] = json.loads(self.sent[self._read - 1])
        return decoded

    def unread(self) -> list[str]:
        return self.sent[self._read :]


@pytest.fixture
def connection() -> ScriptedConnection:
    return ScriptedConnection()


@pytest.fixture
def make_connection() -> type[ScriptedConnection]:
    return ScriptedConnection


@asynccontextmanager
async def running(endpoint: OcppEndpoint) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``endpoint`` for the block; close its connection and join it afterwards."""
    task = asyncio.create_task(endpoint.run(), name="endpoint-under-test")
    try:
        yield task
    finally:
        endpoint._connection.close()
        async with asyncio.timeout(WAIT_S):
            await task


@pytest.fixture
def run_endpoint() -> Callable[[OcppEndpoint], Any]:
    return running
