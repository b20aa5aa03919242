"""The CSMS node role: what a node adds to the CSMS it runs (``vpp_core.app`` wires it).

* :class:`NodeEvents` is the :class:`~vpp_core.cluster.events.PublishingFleet`'s outbox: the
  fleet's events, in order, published to the stream by :meth:`NodeAgent._publish` (retried
  while NATS is away; bounded, the oldest dropped and counted beyond
  ``[cluster] outbox_max_events``).
* the node serves each connected station's command subject (``CommandResponder``) from its
  connect to its disconnect, its roster (station -> subprotocol) and a heartbeat every
  ``node_timeout_s / 5``; and its health endpoint for HAProxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from vpp_core.cluster.bus import Bus, BusError, heartbeat_subject, roster_subject
from vpp_core.cluster.commands import CommandResponder
from vpp_core.cluster.config import ClusterConfig
from vpp_core.cluster.events import FleetEvent
from vpp_core.cluster.health import health_endpoint
from vpp_core.supervision import TaskSupervisor

__all__ = ["NodeAgent", "NodeEvents", "node_agent"]

log = logging.getLogger(__name__)
_PUBLISH_BATCH = 256
_RETRY_S = 0.5
_PRESENCE = frozenset({"station_connected", "station_disconnected"})


class NodeEvents:
    """The node fleet's outbox (``emit`` is the ``PublishingFleet``'s hook)."""

    def __init__(self, *, max_events: int, registry: CollectorRegistry) -> None:
        self.queue: deque[FleetEvent] = deque()
        self.presence: asyncio.Queue[FleetEvent] = asyncio.Queue()
        self.max_events = max_events
        self._ready = asyncio.Event()
        self.published = Counter(
            "vpp_cluster_events_published_total",
            "Fleet events stored in JetStream",
            registry=registry,
        )
        self.dropped = Counter(
            "vpp_cluster_events_dropped_total",
            "Fleet events dropped from a full outbox (NATS away too long)",
            registry=registry,
        )
        Gauge(
            "vpp_cluster_outbox_events", "Fleet events not yet stored", registry=registry
        ).set_function(lambda: len(self.queue))

    def emit(self, event: FleetEvent) -> None:
        if len(self.queue) >= self.max_events:
            self.queue.popleft()
            self.dropped.inc()
        self.queue.append(event)
        self._ready.set()
        if event.op in _PRESENCE:
            self.presence.put_nowait(event)

    async def wait(self) -> None:
        await self._ready.wait()
        self._ready.clear()


class NodeAgent:
    """The running node's cluster side (its tasks run under the core's supervisor)."""

    def __init__(self, config: ClusterConfig, bus: Bus, events: NodeEvents, csms: Any) -> None:
        self.config = config
        self.bus = bus
        self.events = events
        self.csms = csms
        self.responder = CommandResponder(bus, csms.commands)
        self.boot = secrets.token_hex(4)
        self._failing = False

    async def publish(self) -> None:
        """Store the outbox's events in order; on failure keep them and retry."""
        queue = self.events.queue
        while True:
            if not queue:
                await self.events.wait()
                continue
            batch = [queue[i] for i in range(min(_PUBLISH_BATCH, len(queue)))]
            results = await asyncio.gather(
                *(self.bus.publish_event(e) for e in batch), return_exceptions=True
            )
            stored = 0
            for result in results:
                if isinstance(result, BaseException):
                    break
                stored += 1
            for _ in range(stored):  # the stored prefix leaves; a retry is deduplicated
                queue.popleft()
            self.events.published.inc(stored)
            if stored < len(batch):
                self._note_failure(results[stored])
                await asyncio.sleep(_RETRY_S)
            elif self._failing:
                log.info("fleet events: stored again (%d waiting)", len(queue))
                self._failing = False

    def _note_failure(self, exc: Any) -> None:
        if not self._failing:
            log.warning("fleet events: cannot store (%s); keeping them and retrying", exc)
        self._failing = True

    async def follow_presence(self) -> None:
        """Serve a station's command subject from its connect to its disconnect."""
        while True:
            event = await self.events.presence.get()
            try:
                if event.op == "station_connected":
                    await self.responder.hold(event.station_id)
                else:
                    await self.responder.release(event.station_id)
            except BusError as exc:
                log.warning("%s: command subject not changed: %s", event.station_id, exc)

    async def heartbeat(self) -> None:
        payload = orjson.dumps({"node": self.config.node_id, "boot": self.boot})
        subject = heartbeat_subject(self.config.node_id or "")
        while True:
            with contextlib.suppress(BusError):
                await self.bus.notify(subject, payload)
            await asyncio.sleep(self.config.node_timeout_s / 5)

    async def roster(self, _payload: bytes) -> bytes:
        stations = {sid: ws.subprotocol for sid, (_, ws) in self.csms.connections.items()}
        return orjson.dumps({"node": self.config.node_id, "boot": self.boot, "stations": stations})


@contextlib.asynccontextmanager
async def node_agent(
    config: ClusterConfig,
    bus: Bus,
    events: NodeEvents,
    csms: Any,
    *,
    supervisor: TaskSupervisor,
    healthy: Any,
) -> AsyncIterator[NodeAgent]:
    agent = NodeAgent(config, bus, events, csms)
    keep = supervisor.keep_running
    roster = await bus.serve(roster_subject(config.node_id or ""), agent.roster)
    try:
        async with (
            health_endpoint(config.health_host, config.health_port, healthy),
            asyncio.TaskGroup() as tasks,
        ):
            jobs = [
                tasks.create_task(keep("cluster-events-publish", agent.publish)),
                tasks.create_task(keep("cluster-presence", agent.follow_presence)),
                tasks.create_task(keep("cluster-heartbeat", agent.heartbeat)),
            ]
            try:
                yield agent
            finally:
                for job in jobs:
                    job.cancel()
    finally:
        await roster.stop()
        await agent.responder.release_all()
