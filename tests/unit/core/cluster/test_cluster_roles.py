"""The cluster's parts in one process, over the in-process bus: fleet events replayed on a
coordinator's fleet, station commands to the node holding the connection, node death and
rosters, and the ``[cluster]`` configuration's errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.doubles.waiting import eventually
from tests.unit.core.fleet.test_fleet_state import NEEDS, T0, _meter, _tx
from v2g_common.config import ConfigError, parse_config
from vpp_core.cluster.bus import InProcessBus
from vpp_core.cluster.commands import (
    BusStationCommands,
    CommandResponder,
    RemoteCommandError,
    StationNotHeld,
)
from vpp_core.cluster.config import cluster_problems
from vpp_core.cluster.events import FleetEvent, PublishingFleet
from vpp_core.cluster.replica import FleetReplica, NodeWatch
from vpp_core.config import CoreConfig
from vpp_core.dispatch.ports import CommandResult
from vpp_core.fleet.model import StationEntry
from vpp_core.fleet.state import FleetState

ENTRY = StationEntry("CS-1", 2, True, "site-a", "north", None)


def _node_fleet(emitted: list[FleetEvent]) -> PublishingFleet:
    fleet = PublishingFleet(node_id="n1", emit=emitted.append)
    fleet.set_entries([ENTRY])
    return fleet


def _replica() -> FleetReplica:
    fleet = FleetState()
    fleet.set_entries([ENTRY])
    return FleetReplica(fleet, InProcessBus(), registry=CollectorRegistry(), clock=lambda: T0)


def _session_view(fleet: FleetState) -> list[tuple[Any, ...]]:
    return [
        (s.key, s.connected, s.soc_pct, s.energy_import_wh, s.present_power_w, s.max_discharge_w)
        for s in fleet.sessions()
    ]


def _drive(fleet: FleetState) -> None:
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0, meter=[_meter(0, power_w=0, import_wh=100)])
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=T0, now=T0)
    _tx(fleet, "Updated", 10, meter=[_meter(10, power_w=-7000, import_wh=100, soc=41.5)])
    fleet.record_meter_values(
        "CS-1", evse_id=1, meter_value=[_meter(20, power_w=-6000, import_wh=101)], now=T0
    )


async def test_replayed_events_give_the_coordinator_the_nodes_sessions() -> None:
    emitted: list[FleetEvent] = []
    node = _node_fleet(emitted)
    _drive(node)
    replica = _replica()
    bus = replica.bus
    for event in emitted:  # through the bus's encoding, as NATS carries them
        await bus.publish_event(FleetEvent.decode(event.encode(), event.msg_id))
    await bus.publish_event(emitted[0])  # retried publish: stored once
    reader = bus.events(since=T0.replace(year=2000))
    for _ in range(len(emitted)):
        replica.apply(*await anext(reader))
    replica.apply(len(emitted), emitted[-1])  # a redelivery: skipped, counted
    assert _session_view(replica.fleet) == _session_view(node)
    assert _session_view(node)[0][1:] == (True, 41.5, 101.0, -6000.0, 10000)
    assert replica.skipped.labels("duplicate")._value.get() == 1
    assert replica.applied.labels("record_meter_values")._value.get() == 1
    assert [e.op for e in emitted] == [
        "station_connected",
        "record_transaction_event",
        "record_charging_needs",
        "record_transaction_event",
        "record_meter_values",
    ]


def test_a_change_the_fleet_refuses_is_not_emitted() -> None:
    emitted: list[FleetEvent] = []
    node = _node_fleet(emitted)
    with pytest.raises(ValueError, match="value"):
        node.record_meter_values(
            "CS-1",
            evse_id=1,
            meter_value=[{"timestamp": "not a time", "sampled_value": []}],
            now=T0,
        )
    assert emitted == []


class FakeCommander:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any]
    ) -> CommandResult:
        self.sent.append((station_id, profile))
        if profile.get("id") == 13:
            raise ConnectionError("station went away")
        return CommandResult("Accepted")

    async def get_charging_profiles(self, station_id: str, **criteria: Any) -> list[Any]:
        return [{"id": 7, "criteria": criteria}]

    async def afrr_signal(self, station_id: str, *, timestamp: datetime, signal: int) -> Any:
        self.sent.append((station_id, {"timestamp": timestamp, "signal": signal}))
        return CommandResult("Rejected", "NotEnabled")


async def test_an_afrr_signal_crosses_the_bus_with_its_timestamp() -> None:
    bus = InProcessBus()
    commander = FakeCommander()
    responder = CommandResponder(bus, commander)
    await responder.hold("CS-1")
    result = await BusStationCommands(bus, timeout_s=2).afrr_signal(
        "CS-1", timestamp=T0, signal=-2500
    )
    assert result == CommandResult("Rejected", "NotEnabled")
    assert commander.sent == [("CS-1", {"timestamp": T0, "signal": -2500})]


async def test_commands_reach_only_the_node_holding_the_station() -> None:
    bus = InProcessBus()
    commander = FakeCommander()
    responder = CommandResponder(bus, commander)
    commands = BusStationCommands(bus, timeout_s=2)
    with pytest.raises(StationNotHeld, match="not connected to any CSMS node"):
        await commands.set_charging_profile("CS-1", 1, {"id": 1})
    await responder.hold("CS-1")
    assert await commands.set_charging_profile("CS-1", 1, {"id": 1}) == CommandResult("Accepted")
    profiles = await commands.get_charging_profiles("CS-1", purpose="TxProfile")
    assert profiles == [
        {"id": 7, "criteria": {"evse_id": None, "purpose": "TxProfile", "stack_level": None}}
    ]
    with pytest.raises(RemoteCommandError, match="ConnectionError: station went away"):
        await commands.set_charging_profile("CS-1", 1, {"id": 13})
    await responder.release("CS-1")
    with pytest.raises(StationNotHeld):
        await commands.set_charging_profile("CS-1", 1, {"id": 2})
    assert [p["id"] for _, p in commander.sent] == [1, 13]


async def test_a_silent_node_loses_its_stations_and_a_roster_brings_them_back() -> None:
    emitted: list[FleetEvent] = []
    node = _node_fleet(emitted)
    _drive(node)
    replica = _replica()
    for seq, event in enumerate(emitted, start=1):
        replica.apply(seq, event)
    assert replica.holder == {"CS-1": "n1"}
    watch = NodeWatch(replica, replica.bus, timeout_s=1.0)
    watch.heard("vpp.node.n1.heartbeat", b'{"node": "n1", "boot": "b1"}')
    watch.nodes["n1"] = ("b1", watch.nodes["n1"][1] - 5.0)  # last heard 5 s ago
    sweeping = asyncio.create_task(watch.run())
    await eventually(lambda: not replica.fleet.sessions()[0].connected, timeout_s=3)
    assert replica.holder == {}

    async def roster(_payload: bytes) -> bytes:
        return b'{"node": "n2", "boot": "b9", "stations": {"CS-1": "ocpp2.1"}}'

    await replica.bus.serve("vpp.node.n2.roster", roster)
    watch.heard("vpp.node.n2.heartbeat", b'{"node": "n2", "boot": "b9"}')
    await eventually(lambda: replica.fleet.sessions()[0].connected, timeout_s=3)
    sweeping.cancel()
    assert replica.holder == {"CS-1": "n2"}


@pytest.mark.parametrize(
    ("cluster", "key"),
    [
        ({"role": "csms", "node_id": "n1"}, "cluster.nats_url"),
        ({"role": "coordinator", "nats_url": "nats://x:4222"}, "cluster.node_id"),
        ({"role": "csms", "nats_url": "nats://x:4222", "node_id": "a.b"}, "cluster.node_id"),
        ({"role": "leader"}, "cluster.role"),
        ({"lease_ttl_s": 0.1}, "cluster.lease_ttl_s"),
    ],
)
def test_bad_cluster_settings_name_their_key(cluster: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CoreConfig, {"cluster": cluster}, source="core.toml")
    assert key in str(caught.value)


def test_cluster_roles_need_postgresql_and_a_coordinator_the_api() -> None:
    config = parse_config(
        CoreConfig,
        {"cluster": {"role": "coordinator", "nats_url": "nats://x:4222", "node_id": "c1"}},
        source="core.toml",
    )
    problems = cluster_problems(config.cluster, database_url="sqlite:///f.db", has_api=False)
    assert [key for key, _ in problems] == ["fleet.database_url", "api"]
    assert cluster_problems(config.cluster, database_url="postgresql://h/db", has_api=True) == []
    embedded = CoreConfig().cluster
    assert cluster_problems(embedded, database_url="sqlite:///f.db", has_api=False) == []


def test_event_encoding_keeps_times() -> None:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(microseconds=5)
    event = FleetEvent("station_connected", "CS-1", {"subprotocol": None, "now": at}, "n", "i")
    assert FleetEvent.decode(event.encode(), "i").kwargs == {"subprotocol": None, "now": at}
