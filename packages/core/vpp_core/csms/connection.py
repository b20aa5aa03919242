"""A station's websocket as the OCPP endpoint sees it, read no faster than its budget.

A token bucket per connection: ``burst`` messages pass at once, then ``rate_per_s``. A
station over budget waits *inside its own receive loop*, so its socket buffer fills and TCP
pushes back on that station alone; everyone else keeps their share of the event loop.

Once the connection is closed, frames still buffered are dropped instead of handled: their
answers could not be delivered, so the station counts them as unsent and sends them again
(OCPP retries unanswered transaction messages). This keeps a vanished flooder from holding
the CPU for its whole backlog.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.protocol import State

from vpp_core.csms.direct_send import send_text

__all__ = ["ThrottledConnection"]


class ThrottledConnection:
    """Wraps a websockets ``ServerConnection`` (``recv``/``send``/``subprotocol``)."""

    __slots__ = ("_burst", "_clock", "_last_s", "_on_frame", "_rate", "_tokens", "send", "ws")

    def __init__(
        self,
        ws: Any,
        *,
        rate_per_s: float,
        burst: int,
        on_frame: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws = ws
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last_s = clock()
        self._on_frame = on_frame
        #: Sending is not budgeted: straight to the connection (websockets' own ``send`` but
        #: for the open connection's common case, see :mod:`vpp_core.csms.direct_send`).
        self.send: Callable[[str], Awaitable[None]] = (
            functools.partial(send_text, ws) if isinstance(ws, Connection) else ws.send
        )

    @property
    def subprotocol(self) -> str | None:
        subprotocol: str | None = self.ws.subprotocol
        return subprotocol

    async def recv(self) -> str | bytes:
        data: str | bytes = await self.ws.recv()
        if self.ws.state is State.CLOSED:
            raise EOFError("connection closed; buffered frames dropped")
        if self._on_frame is not None:
            self._on_frame()
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last_s) * self._rate)
        self._last_s = now
        if self._tokens < 1.0:
            await asyncio.sleep((1.0 - self._tokens) / self._rate)
            self._tokens = 1.0
            self._last_s = self._clock()
        self._tokens -= 1.0
        return data
