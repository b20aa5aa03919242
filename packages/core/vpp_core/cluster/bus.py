"""The bus between cluster nodes (a port), and its in-process adapter.

Two kinds of traffic (docs/cluster.md):

* **fleet events**, durable and ordered: CSMS nodes publish (:meth:`Bus.publish_event`, stored
  once even when retried), coordinators read them back in order from a point in time
  (:meth:`Bus.events`), each with its stream sequence number;
* **requests and notices**, not stored: station commands on a per-station subject that only
  the node holding the station's connection serves (:meth:`Bus.serve`), node heartbeats and
  rosters. A request nobody serves fails at once with :class:`NoResponder`.

``vpp_core.cluster.nats_bus`` is the NATS/JetStream adapter; :class:`InProcessBus` keeps
everything in one process (tests, and the wiring's reference behaviour).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from vpp_core.cluster.events import FleetEvent

__all__ = [
    "Bus",
    "BusError",
    "BusTimeout",
    "InProcessBus",
    "NoResponder",
    "Served",
    "heartbeat_subject",
    "roster_subject",
    "station_subject",
]

#: A request handler: the request's payload -> the reply's.
Handler = Callable[[bytes], Awaitable[bytes]]
#: A notice listener: (subject, payload).
Listener = Callable[[str, bytes], None]
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class BusError(Exception):
    """The bus could not carry a request or an event."""


class NoResponder(BusError):
    """Nobody serves the subject (for a station: no CSMS node holds its connection)."""


class BusTimeout(BusError):
    """A request was not answered in time."""


def _token(name: str) -> str:
    """A NATS subject token for any station or node name (``.``, ``*``, ``>`` are syntax)."""
    return name if _TOKEN.fullmatch(name) else "x" + name.encode().hex()


def station_subject(station_id: str) -> str:
    return f"vpp.station.{_token(station_id)}.command"


def heartbeat_subject(node_id: str) -> str:
    return f"vpp.node.{_token(node_id)}.heartbeat"


def roster_subject(node_id: str) -> str:
    return f"vpp.node.{_token(node_id)}.roster"


HEARTBEATS = "vpp.node.*.heartbeat"


class Served(Protocol):
    async def stop(self) -> None: ...


class Bus(Protocol):
    async def publish_event(self, event: FleetEvent) -> None:
        """Store the event (raises :class:`BusError` when it may not have been stored)."""
        ...

    def events(self, *, since: datetime) -> AsyncIterator[tuple[int, FleetEvent]]:
        """Every event stored from ``since`` on, in order, then live ones, forever; a
        redelivered one keeps its sequence number."""
        ...

    async def request(self, subject: str, payload: bytes, *, timeout_s: float) -> bytes: ...

    async def serve(self, subject: str, handler: Handler) -> Served: ...

    async def notify(self, subject: str, payload: bytes) -> None: ...

    async def listen(self, pattern: str, listener: Listener) -> Served: ...


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    if p and p[-1] == ">":
        return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False))
    return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True))


@dataclass
class _Stop:
    undo: Callable[[], None]

    async def stop(self) -> None:
        self.undo()


@dataclass
class InProcessBus:
    """The bus inside one process: a list for the stream, dicts for the subjects."""

    stream: list[tuple[datetime, FleetEvent]] = field(default_factory=list)
    _stored: set[str] = field(default_factory=set)
    _handlers: dict[str, Handler] = field(default_factory=dict)
    _listeners: list[tuple[str, Listener]] = field(default_factory=list)
    _grew: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def publish_event(self, event: FleetEvent) -> None:
        if event.msg_id in self._stored:  # the duplicate window
            return
        self._stored.add(event.msg_id)
        self.stream.append((datetime.now(UTC), event))
        async with self._grew:
            self._grew.notify_all()

    async def events(self, *, since: datetime) -> AsyncIterator[tuple[int, FleetEvent]]:
        index = next((i for i, (at, _) in enumerate(self.stream) if at >= since), None)
        index = len(self.stream) if index is None else index
        while True:
            while index < len(self.stream):
                index += 1
                yield index, self.stream[index - 1][1]
            async with self._grew:
                await self._grew.wait_for(self._longer_than(index))

    def _longer_than(self, index: int) -> Callable[[], bool]:
        return lambda: index < len(self.stream)

    async def request(self, subject: str, payload: bytes, *, timeout_s: float) -> bytes:
        handler = self._handlers.get(subject)
        if handler is None:
            raise NoResponder(subject)
        try:
            async with asyncio.timeout(timeout_s):
                return await handler(payload)
        except TimeoutError as exc:
            raise BusTimeout(f"{subject}: no answer within {timeout_s:g} s") from exc

    async def serve(self, subject: str, handler: Handler) -> Served:
        self._handlers[subject] = handler
        return _Stop(lambda: self._handlers.pop(subject, None) and None)

    async def notify(self, subject: str, payload: bytes) -> None:
        for pattern, listener in list(self._listeners):
            if _matches(pattern, subject):
                listener(subject, payload)

    async def listen(self, pattern: str, listener: Listener) -> Served:
        entry = (pattern, listener)
        self._listeners.append(entry)
        return _Stop(lambda: self._listeners.remove(entry))
