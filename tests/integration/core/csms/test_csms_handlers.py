"""Station messages reach the live fleet through the handlers (raw JSON in, fleet out)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.core.csms.conftest import (
    PASSWORD,
    STATIONS,
    CsmsUnderTest,
    needs_payload,
    tx_payload,
)
from vpp_core.fleet import StationEntry

pytestmark = pytest.mark.integration
TS = "2026-03-01T12:00:00Z"


async def test_session_messages_update_the_fleet(csms: CsmsUnderTest) -> None:
    fleet = csms.server.fleet
    async with csms.station("CS-0001", password=PASSWORD) as station:
        status = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
        assert (await station.call("StatusNotification", status))[0] == 3
        started = tx_payload("Started", 0, TS, power_w=0, import_wh=10, export_wh=0, soc=50)
        started["idToken"] = {"idToken": "ABC", "type": "ISO14443"}
        reply = await station.call("TransactionEvent", started)
        assert reply[2] == {"idTokenInfo": {"status": "Accepted"}}
        reply = await station.call("NotifyEVChargingNeeds", needs_payload())
        assert reply[2] == {"status": "Accepted"}
        meter = {
            "evseId": 1,
            "meterValue": tx_payload("Updated", 1, "2026-03-01T12:00:10Z")["meterValue"],
        }
        assert (await station.call("MeterValues", meter))[0] == 3
        limit = {
            "evseId": 1,
            "chargingLimit": {"chargingLimitSource": "SO", "isGridCritical": True},
        }
        assert (await station.call("NotifyChargingLimit", limit))[0] == 3
        event = {"type": "TamperDetectionActivated", "timestamp": TS, "techInfo": "lid"}
        assert (await station.call("SecurityEventNotification", event))[0] == 3
        [session] = fleet.sessions()
        assert session.connected
        assert session.max_discharge_w == 10000  # recorded after the answer
        assert session.present_power_w == -7000
        assert session.energy_export_wh == 500
        assert session.soc_at == datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
        assert fleet.evses[("CS-0001", 1)].limit_source == "SO"
        assert fleet.pending.security_events[0]["event_type"] == "TamperDetectionActivated"
        assert fleet.stations["CS-0001"].connected
    async with asyncio.timeout(5):
        while fleet.stations["CS-0001"].connected:  # noqa: ASYNC110 (server-side close)
            await asyncio.sleep(0.01)
    assert not fleet.sessions()[0].connected
    snapshot = csms.server.metrics.registry.get_sample_value(
        "vpp_csms_messages_total", {"action": "TransactionEvent"}
    )
    assert snapshot == 1


async def test_disabling_a_connected_station_closes_it(csms: CsmsUnderTest) -> None:
    async with csms.station("CS-0001", password=PASSWORD) as station:
        assert (await station.call("Heartbeat", {}))[0] == 3
        disabled = [
            StationEntry(e.station_id, e.security_profile, False, e.site, e.region, e.password_hash)
            if e.station_id == "CS-0001"
            else e
            for e in STATIONS
        ]
        await csms.server.apply_registry(disabled)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(station.ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
    assert "CS-0001" not in csms.server.endpoints


async def test_second_connection_replaces_the_first(csms: CsmsUnderTest) -> None:
    async with (
        csms.station("CS-0001", password=PASSWORD) as first,
        csms.station("CS-0001", password=PASSWORD) as second,
    ):
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(first.ws.recv(), 5)
        assert (await second.call("Heartbeat", {}))[0] == 3
        assert csms.server.fleet.stations["CS-0001"].connected
