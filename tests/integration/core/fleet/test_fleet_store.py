"""The fleet store and write-behind, the same suite on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text

from vpp_core.fleet import (
    FleetState,
    FleetStore,
    StationEntry,
    StationRegistry,
    StoreError,
    UnknownStationError,
    WriteBehind,
    hash_password,
    verify_password,
)
from vpp_core.fleet.registry import legacy_scrypt_hash
from vpp_core.fleet.schema import MIGRATIONS
from vpp_core.fleet.store import WriteBatch, WriteReport

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEEDS = {
    "departure_time": "2026-03-01T18:00:00Z",
    "v2x_charging_parameters": {
        "max_charge_power": 11000,
        "max_discharge_power": 9000,
        "min_discharge_power": 400,
        "ev_min_v2x_energy_request": 15000,
        "target_soc": 85,
    },
}


def _tx(fleet: FleetState, event: str, s: float, *, tx: str, import_wh: float, soc: float) -> None:
    at = T0 + timedelta(seconds=s)
    meter = [
        {
            "timestamp": at.isoformat(),
            "sampled_value": [
                {"value": -6000, "measurand": "Power.Active.Import"},
                {"value": import_wh, "measurand": "Energy.Active.Import.Register"},
                {"value": 2 * import_wh, "measurand": "Energy.Active.Export.Register"},
                {"value": soc, "measurand": "SoC"},
            ],
        }
    ]
    fleet.record_transaction_event(
        "CS-1",
        event_type=event,
        timestamp=at,
        trigger_reason="MeterValuePeriodic",
        seq_no=int(s),
        transaction_info={"transaction_id": tx, "charging_state": "Charging"},
        evse_id=1,
        meter_value=meter,
        now=at,
    )


async def test_migrations_are_recorded_and_idempotent(fleet_db_url: str) -> None:
    every = [version for version, _what, _change in MIGRATIONS]
    store = await FleetStore.open(fleet_db_url)
    try:
        assert await store.schema_versions() == every
        assert await store.migrate() == every[-1]
        assert await store.schema_versions() == every
    finally:
        await store.close()


async def test_registry_add_list_disable(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        registry = StationRegistry(store)
        await registry.add(
            "CS-1",
            security_profile=2,
            site="s1",
            region="r1",
            password="0123456789abcdef",
            now=T0,
        )
        await registry.add(
            "CS-2", security_profile=3, site="s1", region="r1", password=None, now=T0
        )
        with pytest.raises(StoreError):
            await registry.add(
                "CS-2", security_profile=3, site="s", region="r", password=None, now=T0
            )
        await registry.set_enabled("CS-1", False)
        with pytest.raises(UnknownStationError):
            await registry.set_enabled("nope", False)
        entries = {e.station_id: e for e in await registry.list()}
        assert not entries["CS-1"].enabled
        assert entries["CS-2"].enabled
        assert entries["CS-1"].password_hash
        assert verify_password("0123456789abcdef", entries["CS-1"].password_hash)
        assert entries["CS-2"].password_hash is None
        assert entries["CS-2"].security_profile == 3
    finally:
        await store.close()


async def test_password_rehash_is_a_compare_and_set(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        old = legacy_scrypt_hash("0123456789abcdef", log2_n=4)
        await store.add_stations([StationEntry("CS-1", 2, True, "s", "r", old)], now=T0)
        _, revision = await store.stations_since(0)
        new = hash_password("0123456789abcdef")
        assert await store.replace_password_hash("CS-1", old=old, new=new)
        changed, _ = await store.stations_since(revision)  # a running core's refresh sees it
        assert [e.password_hash for e in changed] == [new]
        # a second core that checked the same old row: the row moved on, nothing is replaced
        assert not await store.replace_password_hash("CS-1", old=old, new=hash_password("x" * 16))
        assert [e.password_hash for e in await store.stations()] == [new]
    finally:
        await store.close()


async def test_write_behind_then_restore_gives_same_fleet(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    fleet = FleetState()
    writer = WriteBehind(fleet, store, interval_s=0.05)
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    fleet.record_boot("CS-1", vendor="V", model="M", firmware="1.0", reason="PowerUp", now=T0)
    _tx(fleet, "Started", 0, tx="tx-1", import_wh=100, soc=40)
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=T0, now=T0)
    fleet.record_status("CS-1", evse_id=1, connector_status="Occupied", timestamp=T0, now=T0)
    for i in range(1, 6):
        _tx(fleet, "Updated", 10 * i, tx="tx-1", import_wh=100 + i, soc=40 - i)
    _tx(fleet, "Started", 0, tx="tx-old", import_wh=1, soc=1)  # superseded -> then ended
    _tx(fleet, "Started", 60, tx="tx-2", import_wh=5, soc=70)
    assert await writer.flush()
    assert writer.unwritten_age_s() == 0.0
    await store.close()

    store = await FleetStore.open(fleet_db_url)
    try:
        restored = FleetState()
        restored.restore(await store.load(samples_in_memory=30))
        assert {(s.transaction_id) for s in restored.sessions()} == {"tx-2"}
        # tx-1 was superseded by tx-old (same EVSE) and evicted from memory once written
        assert fleet.session("CS-1", "tx-1") is None
        row = await store.session_row("CS-1", "tx-1")
        assert row is not None
        assert not row["active"]
        assert row["stopped_reason"] == "Superseded"
        assert row["energy_import_wh"] == 105
        assert row["energy_export_wh"] == 210
        assert row["soc_pct"] == 35
        assert row["max_discharge_w"] == 9000
        assert row["target_soc_pct"] == 85
        assert row["departure"] == datetime(2026, 3, 1, 18, tzinfo=UTC)
        samples = await store.samples("CS-1", "tx-1")
        assert [s["energy_import_wh"] for s in samples] == [100, 101, 102, 103, 104, 105]
        assert samples[0]["sampled_at"] == T0
        station = restored.stations["CS-1"]
        assert station.vendor == "V"
        assert station.connected is False
        assert restored.evses[("CS-1", 1)].connector_status == "Occupied"
    finally:
        await store.close()


async def test_restored_active_session_keeps_limits_and_energy(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    fleet = FleetState()
    writer = WriteBehind(fleet, store)
    _tx(fleet, "Started", 0, tx="tx-9", import_wh=10, soc=50)
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=T0, now=T0)
    _tx(fleet, "Updated", 10, tx="tx-9", import_wh=20, soc=49)
    await writer.flush()
    restored = FleetState()
    restored.restore(await store.load(samples_in_memory=30))
    [before] = fleet.sessions()
    [after] = restored.sessions()
    assert after == before
    # the next report reconciles; an older replayed reading does not move values back
    _tx(restored, "Updated", 5, tx="tx-9", import_wh=15, soc=49.5)
    assert restored.sessions()[0].energy_import_wh == 20
    _tx(restored, "Updated", 20, tx="tx-9", import_wh=30, soc=48)
    assert restored.sessions()[0].energy_import_wh == 30
    assert restored.sessions()[0].soc_pct == 48
    await WriteBehind(restored, store).flush()
    samples = await store.samples("CS-1", "tx-9")
    assert [s["energy_import_wh"] for s in samples] == [10, 15, 20, 30]
    await store.close()


class _FlakyStore:
    """A store whose first write fails (the database went away for a moment)."""

    def __init__(self, store: FleetStore) -> None:
        self.store = store
        self.failures = 1

    async def write(self, batch: WriteBatch) -> WriteReport:
        if self.failures:
            self.failures -= 1
            raise StoreError("connection refused")
        return await self.store.write(batch)


async def test_failed_write_is_retried_without_loss(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        fleet = FleetState()
        flaky: Any = _FlakyStore(store)
        writer = WriteBehind(fleet, flaky, interval_s=0.01)
        _tx(fleet, "Started", 0, tx="tx-r", import_wh=1, soc=10)
        assert not await writer.flush()
        _tx(fleet, "Updated", 10, tx="tx-r", import_wh=2, soc=11)
        assert writer.unwritten_age_s() > 0
        assert await writer.flush()
        assert [s["energy_import_wh"] for s in await store.samples("CS-1", "tx-r")] == [1, 2]
        row = await store.session_row("CS-1", "tx-r")
        assert row is not None
        assert row["energy_import_wh"] == 2
    finally:
        await store.close()


async def test_writer_task_flushes_on_urgent_change_and_drains_on_stop(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        fleet = FleetState()
        writer = WriteBehind(fleet, store, interval_s=30.0)  # only urgency can trigger
        async with asyncio.TaskGroup() as tg:
            tg.create_task(writer.run(), name="write-behind")
            _tx(fleet, "Started", 0, tx="tx-u", import_wh=1, soc=10)
            async with asyncio.timeout(5):
                while await store.session_row("CS-1", "tx-u") is None:  # noqa: ASYNC110 (DB poll)
                    await asyncio.sleep(0.01)
            _tx(fleet, "Updated", 10, tx="tx-u", import_wh=2, soc=11)  # not urgent
            writer.stop()
        row = await store.session_row("CS-1", "tx-u")
        assert row is not None
        assert row["energy_import_wh"] == 2
    finally:
        await store.close()


async def test_command_log_keeps_the_request_as_sent(fleet_db_url: str) -> None:
    """The logged request is a snapshot taken when recorded (JSON, nested profile intact):
    a caller changing its dicts afterwards does not change the log."""
    store = await FleetStore.open(fleet_db_url)
    try:
        fleet = FleetState()
        profile: dict[str, Any] = {
            "id": 700000001,
            "charging_schedule": [
                {"id": 1, "charging_schedule_period": [{"start_period": 0, "setpoint": -5.5e3}]}
            ],
        }
        request = {"evse_id": 1, "charging_profile": profile, "custom_data": None}
        fleet.record_command(
            station_id="CS-1",
            action="SetChargingProfile",
            request=request,
            sent_at=T0,
            status="Accepted",
            latency_s=0.012,
        )
        profile["charging_schedule"][0]["charging_schedule_period"][0]["setpoint"] = 0.0
        assert await WriteBehind(fleet, store).flush()
        [row] = await store.commands("CS-1")
        assert row["action"] == "SetChargingProfile"
        assert row["status"] == "Accepted"
        period = row["request"]["charging_profile"]["charging_schedule"][0]
        assert period["charging_schedule_period"] == [{"start_period": 0, "setpoint": -5500.0}]
        assert row["request"]["custom_data"] is None
    finally:
        await store.close()


async def test_what_decides_dispatch_eligibility_survives_a_restart(fleet_db_url: str) -> None:
    """Migration 4: the requested and allowed energy transfer modes and the priority-charging
    state are written and restored (a restarted core must not plan a DC-only EV for discharge)."""
    store = await FleetStore.open(fleet_db_url)
    fleet = FleetState()
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0, tx="tx-1", import_wh=10, soc=50)
    needs = {**NEEDS, "requested_energy_transfer": "DC_BPT"}
    fleet.record_charging_needs("CS-1", evse_id=1, needs=needs, timestamp=T0, now=T0)
    fleet.record_allowed_energy_transfer("CS-1", transaction_id="tx-1", modes=["DC"], now=T0)
    fleet.record_priority_charging("CS-1", transaction_id="tx-1", activated=True, now=T0)
    await WriteBehind(fleet, store).flush()
    restored = FleetState()
    restored.restore(await store.load(samples_in_memory=30))
    [after] = restored.sessions()
    assert after.requested_energy_transfer == "DC_BPT"
    assert after.allowed_energy_transfer == ("DC",)
    assert after.priority_charging is True
    assert after.charge_only is not None
    assert after.not_dispatchable is not None
    await store.close()


async def test_migration_4_adds_its_columns_to_an_older_database(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    columns = ("requested_energy_transfer", "allowed_energy_transfer", "priority_charging")
    async with store.engine.begin() as conn:  # back to what migrations 1, 2 and 5 left
        for name in columns:
            await conn.execute(text(f"ALTER TABLE sessions DROP COLUMN {name}"))
        await conn.execute(text("DELETE FROM schema_version WHERE version = 4"))
    await store.close()
    store = await FleetStore.open(fleet_db_url)  # migrates
    try:
        assert 4 in await store.schema_versions()
        async with store.engine.connect() as conn:
            present = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("sessions")}
            )
        assert set(columns) <= present
    finally:
        await store.close()


async def test_migration_7_adds_the_replans_column_to_an_older_database(
    fleet_db_url: str,
) -> None:
    store = await FleetStore.open(fleet_db_url)
    async with store.engine.begin() as conn:  # back to what migrations 1 to 6 left
        await conn.execute(text("ALTER TABLE dispatches DROP COLUMN replans"))
        await conn.execute(text("DELETE FROM schema_version WHERE version = 7"))
    await store.close()
    store = await FleetStore.open(fleet_db_url)  # migrates
    try:
        assert 7 in await store.schema_versions()
        async with store.engine.connect() as conn:
            present = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("dispatches")}
            )
        assert "replans" in present
    finally:
        await store.close()
