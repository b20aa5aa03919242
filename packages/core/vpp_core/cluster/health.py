"""A CSMS node's health endpoint for HAProxy (``GET /health``): 200 while the node serves
OCPP and reaches the bus (an outage shorter than ``2 * node_timeout_s`` tolerated), 503
otherwise: HAProxy then closes its connections and sends the stations elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

__all__ = ["health_endpoint"]

_READ_TIMEOUT_S = 2.0


def _response(healthy: bool) -> bytes:
    status, body = ("200 OK", b"serving\n") if healthy else ("503 Service Unavailable", b"no\n")
    head = f"HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


@contextlib.asynccontextmanager
async def health_endpoint(
    host: str, port: int, healthy: Callable[[], bool]
) -> AsyncIterator[int | None]:
    """Serve ``healthy()`` on ``host:port`` (``port = 0``: not served, yields None; else the
    bound port)."""
    if not port:
        yield None
        return

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                await reader.readuntil(b"\r\n\r\n")
            writer.write(_response(healthy()))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    async with server:
        yield int(server.sockets[0].getsockname()[1])
