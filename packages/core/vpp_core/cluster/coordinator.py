"""The coordinator role: dispatch runner, planner and API, exactly one active.

Every coordinator keeps a hot copy of the fleet (``FleetReplica`` + ``NodeWatch``) from the
moment it starts. The one holding the lease (``CoordinatorLease``) runs the grid services with
station commands over the bus and the dispatch journal in PostgreSQL; ``DispatchRunner``
takes back every dispatch the journal holds unfinished before the API serves (as after a
restart of an embedded core: ``vpp_core.dispatch.recovery``), so a standby that takes over
resumes the dispatches in flight and their reports cover the failover. An active that can
no longer show it holds the lease stops (exit status 3; its service manager starts it
again, as a standby) rather than risk two actives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from v2g_common.sdnotify import SystemdNotifier
from vpp_core.cluster.bus import Bus
from vpp_core.cluster.commands import BusStationCommands
from vpp_core.cluster.lease import CoordinatorLease, LeaseLost
from vpp_core.cluster.nats_bus import NatsBus
from vpp_core.cluster.replica import FleetReplica, NodeWatch
from vpp_core.config import CoreConfig
from vpp_core.fleet import FleetState, FleetStore
from vpp_core.fleet.dispatch_journal import SqlDispatchJournal
from vpp_core.fleet.service_journal import SqlServiceJournal
from vpp_core.grid_services import GridServices, open_grid_services
from vpp_core.supervision import TaskSupervisor

__all__ = ["LEASE_LOST_EXIT", "run_coordinator"]

log = logging.getLogger(__name__)
LEASE_LOST_EXIT = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_coordinator(
    config: CoreConfig,
    *,
    stop: asyncio.Event,
    on_active: Callable[[GridServices], None] | None = None,
) -> int:
    """Run until ``stop``: 0; or until the lease is lost: :data:`LEASE_LOST_EXIT`."""
    cluster = config.cluster
    assert cluster.nats_url
    assert cluster.node_id
    registry = CollectorRegistry()
    supervisor = TaskSupervisor(registry)
    if config.metrics.port:
        start_http_server(config.metrics.port, config.metrics.host, registry=registry)
    store = await FleetStore.open(config.fleet.database_url)
    try:
        fleet = FleetState(samples_in_memory=config.fleet.samples_in_memory)
        started = _utc_now()
        fleet.restore(await store.load(samples_in_memory=config.fleet.samples_in_memory))
        async with NatsBus(
            cluster.nats_url, name=cluster.node_id, stream_max_age_s=cluster.stream_max_age_s
        ) as bus:
            replica = FleetReplica(fleet, bus, registry=registry, clock=_utc_now)
            watch = NodeWatch(replica, bus, cluster.node_timeout_s)
            since = started - timedelta(seconds=cluster.replay_s)
            keep = supervisor.keep_running
            async with asyncio.TaskGroup() as tasks:
                jobs = [
                    tasks.create_task(keep("cluster-replica", lambda: replica.follow(since))),
                    tasks.create_task(keep("cluster-replica-drain", replica.drain_pending)),
                    tasks.create_task(keep("cluster-node-watch", watch.run)),
                ]
                try:
                    return await _lead_when_elected(
                        config, store, fleet, bus, registry, supervisor, stop, on_active
                    )
                finally:
                    for job in jobs:
                        job.cancel()
    finally:
        await store.close()


async def _lead_when_elected(
    config: CoreConfig,
    store: FleetStore,
    fleet: FleetState,
    bus: Bus,
    registry: CollectorRegistry,
    supervisor: TaskSupervisor,
    stop: asyncio.Event,
    on_active: Callable[[GridServices], None] | None,
) -> int:
    lease = CoordinatorLease(config.fleet.database_url, ttl_s=config.cluster.lease_ttl_s)
    active = Gauge(
        "vpp_cluster_coordinator_active",
        "1 while this coordinator holds the lease",
        registry=registry,
    )
    notifier = SystemdNotifier.from_environment()
    notifier.notify("READY=1", "STATUS=standby: waiting for the coordinator lease")
    try:
        if not await _until_stop(lease.acquire(), stop):
            return 0
        active.set(1)
        log.info("coordinator %s: lease taken, active", config.cluster.node_id)
        commands = BusStationCommands(bus, timeout_s=config.csms.command_timeout_s + 2.0)
        async with open_grid_services(
            config,
            fleet=fleet,
            commands=commands,
            registry=registry,
            supervisor=supervisor,
            journal=SqlDispatchJournal(store.engine, registry=registry),
            service_journal=SqlServiceJournal(store.engine, registry=registry),
        ) as grid:
            notifier.notify("STATUS=active coordinator")
            if on_active is not None:
                on_active(grid)
            try:
                await _until_stop(lease.hold(), stop)
            except LeaseLost as exc:
                log.error("coordinator %s: %s; stopping", config.cluster.node_id, exc)
                return LEASE_LOST_EXIT
        return 0
    finally:
        active.set(0)
        await lease.release()


async def _until_stop(work: object, stop: asyncio.Event) -> bool:
    """Run ``work`` until it finishes (True) or ``stop`` is set (False)."""
    assert asyncio.iscoroutine(work)
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()  # raises LeaseLost
        return True
    return False
