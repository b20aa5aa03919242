"""A coordinator's copy of the live fleet, fed by the CSMS nodes' events.

:class:`FleetReplica` starts from the database's fleet (what the nodes wrote) and applies the
stream from ``[cluster] replay_s`` before that on: each sequence number once, in order (a
redelivery is skipped and counted). Events are replays of ``FleetState`` calls, so a replayed
one changes nothing the database already had (registers and SoC keep their newest reading).

Connections are the nodes' to know: :class:`NodeWatch` hears each node's heartbeat; a node
seen for the first time (or restarted) is asked for its roster (station -> subprotocol) and
those stations are marked connected; a node silent for ``node_timeout_s`` is dead and the
stations it held are marked disconnected until a connect event from another node.

The replica never writes the database: what a write-behind would have taken from its pending
queue is dropped every second (the nodes write the fleet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from vpp_core.cluster.bus import HEARTBEATS, Bus, BusError, roster_subject
from vpp_core.cluster.events import FleetEvent, apply_event
from vpp_core.fleet.pending import PendingWrites
from vpp_core.fleet.state import FleetState

__all__ = ["FleetReplica", "NodeWatch"]

log = logging.getLogger(__name__)
_DRAIN_S = 1.0


class FleetReplica:
    def __init__(
        self,
        fleet: FleetState,
        bus: Bus,
        *,
        registry: CollectorRegistry,
        clock: Callable[[], datetime],
    ) -> None:
        self.fleet = fleet
        self.bus = bus
        self.clock = clock
        #: Which node each station last connected through.
        self.holder: dict[str, str] = {}
        self.last_seq = 0
        self.caught_up = asyncio.Event()
        self.applied = Counter(
            "vpp_cluster_events_applied_total",
            "Fleet events applied to this coordinator's fleet",
            ["op"],
            registry=registry,
        )
        self.skipped = Counter(
            "vpp_cluster_events_skipped_total",
            "Fleet events not applied: already applied (redelivered) or unusable",
            ["why"],
            registry=registry,
        )
        Gauge(
            "vpp_cluster_last_sequence", "Last fleet event sequence applied", registry=registry
        ).set_function(lambda: self.last_seq)

    async def follow(self, since: datetime) -> None:
        async for seq, event in self.bus.events(since=since):
            self.apply(seq, event)

    def apply(self, seq: int, event: FleetEvent) -> None:
        if seq <= self.last_seq:
            self.skipped.labels("duplicate").inc()
            return
        self.last_seq = seq
        try:
            apply_event(self.fleet, event)
        except Exception as exc:  # one bad event must not stop the replica
            self.skipped.labels("unusable").inc()
            log.error("fleet event %s (%s) not applied: %r", event.msg_id, event.op, exc)
            return
        self.applied.labels(event.op).inc()
        if event.op == "station_connected":
            self.holder[event.station_id] = event.node

    async def drain_pending(self) -> None:
        """Drop what a write-behind would write; evict ended sessions as it would."""
        while True:
            await asyncio.sleep(_DRAIN_S)
            batch = self.fleet.pending
            self.fleet.pending = PendingWrites()
            self.fleet.evict_ended(batch.sessions)

    def node_died(self, node: str) -> int:
        """Mark the stations ``node`` held disconnected; how many."""
        now = self.clock()
        held = [sid for sid, n in self.holder.items() if n == node]
        for sid in held:
            station = self.fleet.stations.get(sid)
            if station is not None and station.connected:
                self.fleet.station_disconnected(sid, now=now)
            del self.holder[sid]
        return len(held)

    def roster(self, node: str, stations: dict[str, str | None]) -> None:
        """A live node's connected stations (asked when it first appears)."""
        now = self.clock()
        for sid, subprotocol in stations.items():
            station = self.fleet.stations.get(sid)
            if station is None or not station.connected:
                self.fleet.station_connected(sid, subprotocol=subprotocol, now=now)
            self.holder[sid] = node


@dataclass
class NodeWatch:
    replica: FleetReplica
    bus: Bus
    timeout_s: float
    #: node -> (boot, monotonic time last heard)
    nodes: dict[str, tuple[str, float]] = field(default_factory=dict)
    _new: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def heard(self, _subject: str, payload: bytes) -> None:
        try:
            beat = orjson.loads(payload)
            node, boot = str(beat["node"]), str(beat["boot"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        known = self.nodes.get(node)
        self.nodes[node] = (boot, time.monotonic())
        if known is None or known[0] != boot:
            self._new.put_nowait(node)

    async def run(self) -> None:
        listening = await self.bus.listen(HEARTBEATS, self.heard)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._rosters(), name="cluster-rosters")
                await self._sweep()
        finally:
            await listening.stop()

    async def _rosters(self) -> None:
        while True:
            node = await self._new.get()
            try:
                reply = await self.bus.request(roster_subject(node), b"{}", timeout_s=5.0)
            except BusError as exc:
                log.warning("roster of node %s not read: %s", node, exc)
                if node in self.nodes:  # asked again at its next heartbeat, still swept
                    self.nodes[node] = ("", self.nodes[node][1])
                continue
            stations = orjson.loads(reply)["stations"]
            self.replica.roster(node, stations)
            log.info("node %s holds %d stations", node, len(stations))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timeout_s / 5))
            now = time.monotonic()
            for node, (_boot, heard_at) in list(self.nodes.items()):
                if now - heard_at > self.timeout_s:
                    del self.nodes[node]
                    lost = self.replica.node_died(node)
                    log.warning(
                        "node %s silent for %.1f s: its %d stations marked disconnected",
                        node,
                        now - heard_at,
                        lost,
                    )
