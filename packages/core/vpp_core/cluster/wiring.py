"""What ``vpp_core.app`` adds to the CSMS half of the core when it runs as a cluster's CSMS
node: the bus, the publishing fleet and the node's services. An embedded core imports this
module but never loads nats-py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from vpp_core.cluster.bus import BusError
from vpp_core.cluster.config import ClusterConfig
from vpp_core.cluster.events import PublishingFleet
from vpp_core.cluster.node import NodeEvents, node_agent
from vpp_core.config import CoreConfig
from vpp_core.fleet.state import FleetState
from vpp_core.supervision import TaskSupervisor

if TYPE_CHECKING:
    from vpp_core.cluster.nats_bus import NatsBus

__all__ = ["NodeSide", "csms_node_side", "new_fleet", "node_services"]

log = logging.getLogger(__name__)
_FLUSH_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class NodeSide:
    config: ClusterConfig
    bus: NatsBus
    events: NodeEvents
    #: The node's Prometheus registry (the CSMS's metrics join it).
    registry: CollectorRegistry


@contextlib.asynccontextmanager
async def csms_node_side(config: ClusterConfig) -> AsyncIterator[NodeSide]:
    """Connect to NATS; at the end store what the outbox still holds (the disconnects of the
    node's closing connections), for at most a few seconds."""
    from vpp_core.cluster.nats_bus import NatsBus  # nats-py is loaded by cluster roles only

    assert config.nats_url
    assert config.node_id
    registry = CollectorRegistry()
    events = NodeEvents(max_events=config.outbox_max_events, registry=registry)
    async with NatsBus(
        config.nats_url, name=config.node_id, stream_max_age_s=config.stream_max_age_s
    ) as bus:
        yield NodeSide(config, bus, events, registry)
        await _flush(bus, events)


async def _flush(bus: NatsBus, events: NodeEvents) -> None:
    try:
        async with asyncio.timeout(_FLUSH_TIMEOUT_S):
            while events.queue:
                await bus.publish_event(events.queue[0])
                events.queue.popleft()
    except (TimeoutError, BusError) as exc:
        log.warning("%d fleet events not stored at shutdown: %r", len(events.queue), exc)


def new_fleet(config: CoreConfig, node: NodeSide | None) -> FleetState:
    """The CSMS's fleet: a node's publishes its changes."""
    kwargs: dict[str, Any] = {
        "samples_in_memory": config.fleet.samples_in_memory,
        "max_queued_rows": config.fleet.max_queued_rows,
    }
    if node is None:
        return FleetState(**kwargs)
    assert node.config.node_id
    return PublishingFleet(node_id=node.config.node_id, emit=node.events.emit, **kwargs)


@contextlib.asynccontextmanager
async def node_services(
    node: NodeSide, csms: Any, *, supervisor: TaskSupervisor
) -> AsyncIterator[None]:
    def healthy() -> bool:
        # a node cut off from NATS for long gives its stations to one that is not; a short
        # outage of NATS itself (a restart) must not send every station of the cluster away
        return node.bus.down_for_s < node.config.node_timeout_s * 2

    async with node_agent(
        node.config, node.bus, node.events, csms, supervisor=supervisor, healthy=healthy
    ):
        yield None
