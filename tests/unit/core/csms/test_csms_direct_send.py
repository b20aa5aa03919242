"""Answers sent past websockets' ``send_context`` on an open connection, through
``Connection.send`` otherwise (real websockets server and client on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from vpp_core.csms.direct_send import send_text

_Scenario = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def _served(scenario: _Scenario) -> AsyncIterator[tuple[Any, asyncio.Future[None]]]:
    """A server running ``scenario`` on its one connection; yields (client, scenario done)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            await scenario(ws)
        except BaseException as exc:
            done.set_exception(exc)
            raise
        done.set_result(None)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            yield client, done


def _forbid_send_context(ws: ServerConnection) -> None:
    def refuse(**_: Any) -> Any:
        raise AssertionError("send_context used on an open connection")

    ws.send_context = refuse  # type: ignore[method-assign]


async def test_open_connection_frames_without_send_context() -> None:
    async def scenario(ws: ServerConnection) -> None:
        _forbid_send_context(ws)
        await send_text(ws, '[3,"1",{}]')
        await send_text(ws, '[3,"2",{"status":"Accepted","note":"é"}]')
        await ws.wait_closed()

    async with _served(scenario) as (client, done):
        assert await client.recv() == '[3,"1",{}]'
        assert await client.recv() == '[3,"2",{"status":"Accepted","note":"é"}]'
        await client.close()
        await asyncio.wait_for(done, 5)


async def test_paused_writing_goes_through_websockets_send() -> None:
    sent_by_websockets: list[str] = []

    async def scenario(ws: ServerConnection) -> None:
        original = ws.send

        async def recording_send(message: Any, text: bool | None = None) -> None:
            sent_by_websockets.append(message)
            ws.paused = False  # the transport drained: websockets' send may write now
            await original(message)

        ws.send = recording_send  # type: ignore[method-assign]
        ws.paused = True  # as pause_writing() leaves it after a write past the high-water mark
        await send_text(ws, "while paused")
        await ws.wait_closed()

    async with _served(scenario) as (client, done):
        assert await client.recv() == "while paused"
        await client.close()
        await asyncio.wait_for(done, 5)
    assert sent_by_websockets == ["while paused"]


async def test_closed_connection_raises_connection_closed() -> None:
    async def scenario(ws: ServerConnection) -> None:
        await ws.wait_closed()
        with pytest.raises(ConnectionClosed):
            await send_text(ws, "too late")

    async with _served(scenario) as (client, done):
        await client.close()
        await asyncio.wait_for(done, 5)
