"""The SECC process's end of the gateway socket (wire protocol, asyncio)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from v2g_ev15118.wire import EvseOffer, Message, WireError, decode, encode

__all__ = ["GatewayChannel"]

log = logging.getLogger(__name__)


class GatewayChannel:
    """Sends the SECC's messages; keeps the gateway's latest :class:`EvseOffer`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.offer: EvseOffer | None = None
        self.on_offer: Callable[[EvseOffer], None] | None = None

    @classmethod
    async def connect(cls, path: Path) -> GatewayChannel:
        reader, writer = await asyncio.open_unix_connection(str(path))
        return cls(reader, writer)

    def send(self, message: Message) -> None:
        self._writer.write(encode(message))

    async def receive(self) -> None:
        """Read the gateway's offers until it closes the socket (then return)."""
        while line := await self._reader.readline():
            try:
                message = decode(line)
            except WireError as exc:
                log.error("bad line from the gateway ignored: %s", exc)
                continue
            if isinstance(message, EvseOffer):
                self.offer = message
                if self.on_offer is not None:
                    self.on_offer(message)
