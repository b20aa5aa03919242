"""Sending an answer on a websockets connection without the per-message context manager.

websockets' ``Connection.send(str)`` wraps every message in ``send_context()``: an async
context manager (a generator object, the event loop's async-generator hooks, a WeakSet add
and remove) that checks the state before and handles closing after. In the CSMS closed loop
(``benchmarks/csms_load.py --closed-loop 50``, py-spy) that wrapper and the ``send`` around it
were ≈ 4 % of the core's samples: as much as framing the message.

When the connection is open, no fragmented message is half sent and writing is not paused,
what ``send`` does comes down to: frame the text, hand the bytes to the transport, and wait
only if that write paused it (the same back-pressure as ``drain``). :func:`send_text` does just
that and leaves every other case (closing, closed, paused, a fragmented send) to
``Connection.send`` itself, so closing, ``ConnectionClosed`` and flow control are websockets'
own. Written against websockets 17's ``asyncio.connection.Connection``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.protocol import State

__all__ = ["send_text"]


async def send_text(ws: Any, text: str) -> None:
    """``await ws.send(text)`` for a websockets asyncio connection, cheaper when it is open."""
    if (
        ws.send_in_progress is not None
        or ws.protocol.state is not State.OPEN
        or ws.paused
        or ws.transport.is_closing()
    ):
        await ws.send(text)
        return
    ws.protocol.send_text(text.encode())
    try:
        ws.send_data()
    except Exception as exc:  # as send_context: the connection is failed and closed
        ws.set_connection_exc(exc)
        ws.transport.abort()
        await asyncio.shield(ws.connection_lost_waiter)
        raise ws.close_exc from exc
    if ws.paused:  # this write filled the transport's buffer past its high-water mark
        await ws.drain()
