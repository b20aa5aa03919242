"""A batch the database refuses is split: good rows land, refused rows are quarantined with
their reason (table, else file), counted, never retried; an unreachable database still means
retry-without-loss. The same suite on SQLite and PostgreSQL (issue 13 item 2)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import text

from tests.doubles.waiting import eventually_async
from tests.integration.core.fleet.databases import pg_admin
from v2g_common.ocpp21 import OcppConnectionClosed
from v2g_common.ocpp21.messages import call_result
from vpp_core.csms.commands import StationCommander
from vpp_core.csms.metrics import CsmsMetrics
from vpp_core.fleet import FleetState, FleetStore, WriteBehind

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PROFILE = {"id": 700000001, "stack_level": 50, "charging_profile_purpose": "TxProfile"}


def tx(fleet: FleetState, station: str, tx_id: str, s: float, *, seq_no: int | None = None) -> None:
    at = T0 + timedelta(seconds=s)
    meter = [
        {
            "timestamp": at.isoformat(),
            "sampled_value": [
                {"value": -6000, "measurand": "Power.Active.Import"},
                {"value": 100 + s, "measurand": "Energy.Active.Export.Register"},
            ],
        }
    ]
    fleet.record_transaction_event(
        station,
        event_type="Started" if s == 0 else "Updated",
        timestamp=at,
        trigger_reason="MeterValuePeriodic",
        seq_no=int(s) if seq_no is None else seq_no,
        transaction_info={"transaction_id": tx_id, "charging_state": "Charging"},
        evse_id=1,
        meter_value=meter,
        now=at,
    )


class Endpoint:
    """The part of a station connection the commander uses: CS-GONE left mid-command."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    async def call(self, request: Any, *, timeout_s: float) -> Any:
        if self.identity == "CS-GONE":
            raise OcppConnectionClosed("CS-GONE: closed (SetChargingProfile)")
        return call_result.SetChargingProfile(status="Accepted")


async def commands_of_both_outcomes(fleet: FleetState) -> None:
    """What a re-dispatch does when one station leaves during it: one command fails, one is
    answered, both logged by the real commander."""
    endpoints: Any = {sid: Endpoint(sid) for sid in ("CS-GONE", "CS-OK")}
    commander = StationCommander(endpoints, fleet, CsmsMetrics(), clock=lambda: T0)
    with pytest.raises(OcppConnectionClosed):
        await commander.set_charging_profile("CS-GONE", 1, PROFILE)
    result = await commander.set_charging_profile("CS-OK", 1, PROFILE)
    assert result.status == "Accepted"


@pytest.fixture
async def store(fleet_db_url: str, tmp_path: Path) -> AsyncIterator[FleetStore]:
    opened = await FleetStore.open(fleet_db_url, quarantine_file=tmp_path / "quarantine.jsonl")
    try:
        yield opened
    finally:
        await opened.close()


async def test_mixed_batch_lands_and_the_poison_row_is_quarantined(store: FleetStore) -> None:
    fleet = FleetState()
    writer = WriteBehind(fleet, store)
    tx(fleet, "CS-OK", "tx-ok", 0)
    tx(fleet, "CS-OK", "tx-ok", 10)
    await commands_of_both_outcomes(fleet)
    tx(fleet, "CS-BAD", "tx-bad", 0, seq_no=2**63)  # too big for the column on both back ends
    assert await writer.flush()

    logged = {r["station_id"]: r for r in await store.commands("CS-GONE")}
    logged |= {r["station_id"]: r for r in await store.commands("CS-OK")}
    error = "OcppConnectionClosed: CS-GONE: closed (SetChargingProfile)"
    assert logged["CS-GONE"]["error"] == error
    assert logged["CS-GONE"]["status"] is None
    assert (logged["CS-OK"]["status"], logged["CS-OK"]["error"]) == ("Accepted", None)
    assert len(await store.samples("CS-OK", "tx-ok")) == 2
    assert len(await store.samples("CS-BAD", "tx-bad")) == 1  # its samples are fine
    assert await store.session_row("CS-BAD", "tx-bad") is None
    [kept] = await store.quarantined()
    assert kept["table_name"] == "sessions"
    assert json.loads(kept["row_json"])["seq_no"] == 2**63
    assert kept["reason"].split(":")[0] in ("OverflowError", "DBAPIError")
    assert "int" in kept["reason"].lower()
    assert writer.quarantined_rows == {("sessions", "database"): 1}

    # nothing is retried: the next writes carry only new rows, and they land
    tx(fleet, "CS-OK", "tx-ok", 20)
    assert await writer.flush()
    assert len(await store.samples("CS-OK", "tx-ok")) == 3
    assert len(await store.quarantined()) == 1

    line = 'vpp_fleet_db_quarantined_rows_total{kept_in="database",table="sessions"} 1.0'
    assert line in exposition(fleet, writer)


def exposition(fleet: FleetState, writer: WriteBehind) -> str:
    """The fleet's series on the core's /metrics registry, as Prometheus reads them."""
    metrics = CsmsMetrics()
    metrics.watch_fleet(
        last_write_lag_s=lambda: 0.0,
        unwritten_age_s=writer.unwritten_age_s,
        dropped_samples=writer.dropped_samples,
        active_sessions=fleet.active_session_count,
        quarantined_rows=lambda: writer.quarantined_rows,
        dropped_rows=writer.dropped_rows,
    )
    return generate_latest(metrics.registry).decode()


async def write_without_quarantine_table(store: FleetStore) -> WriteBehind:
    """The database is up but refuses the quarantine table too (here: it is gone); one good
    and one refused session are written, and the good one lands."""
    async with store._engine.begin() as conn:
        await conn.execute(text("DROP TABLE write_quarantine"))
    fleet = FleetState()
    writer = WriteBehind(fleet, store)
    tx(fleet, "CS-OK", "tx-ok", 0)
    tx(fleet, "CS-BAD", "tx-bad", 0, seq_no=2**63)
    assert await writer.flush()
    assert len(await store.samples("CS-OK", "tx-ok")) == 1
    return writer


async def test_quarantine_falls_back_to_the_file(store: FleetStore, tmp_path: Path) -> None:
    writer = await write_without_quarantine_table(store)
    [line] = (tmp_path / "quarantine.jsonl").read_text().splitlines()
    kept = json.loads(line)
    assert kept["table_name"] == "sessions"
    assert json.loads(kept["row_json"])["transaction_id"] == "tx-bad"
    assert "write_quarantine" in kept["database_error"]
    assert writer.quarantined_rows == {("sessions", "file"): 1}


async def test_rows_nowhere_to_go_are_counted_lost(fleet_db_url: str, tmp_path: Path) -> None:
    store = await FleetStore.open(fleet_db_url, quarantine_file=tmp_path)  # a directory
    try:
        writer = await write_without_quarantine_table(store)
        assert writer.quarantined_rows == {("sessions", "lost"): 1}
    finally:
        await store.close()


async def _outage(fleet_db_url: str, pg_dsn: str | None) -> tuple[Any, Any]:
    """Make the database unreachable and return (start, end) of the outage: PostgreSQL
    refuses connections to it; SQLite is locked by another writer."""
    if fleet_db_url.startswith("sqlite"):
        holder = sqlite3.connect(fleet_db_url.removeprefix("sqlite:///"), isolation_level=None)

        async def lock() -> None:
            holder.execute("BEGIN EXCLUSIVE")

        async def unlock() -> None:
            holder.execute("COMMIT")
            holder.close()

        return lock, unlock
    assert pg_dsn is not None
    name = fleet_db_url.rsplit("/", 1)[1]

    async def refuse() -> None:
        await pg_admin(pg_dsn, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await pg_admin(
            pg_dsn,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )

    async def admit() -> None:
        await pg_admin(pg_dsn, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    return refuse, admit


async def test_unreachable_database_is_retried_without_loss(
    store: FleetStore, fleet_db_url: str, request: pytest.FixtureRequest
) -> None:
    pg_dsn = request.getfixturevalue("pg_dsn") if fleet_db_url.startswith("postgres") else None
    start, end = await _outage(fleet_db_url, pg_dsn)
    fleet = FleetState()
    writer = WriteBehind(fleet, store)
    tx(fleet, "CS-OK", "tx-ok", 0)
    await start()
    try:
        await commands_of_both_outcomes(fleet)  # changes made during the outage
        tx(fleet, "CS-OK", "tx-ok", 10)
        assert not await writer.flush()  # SQLite: after its 5 s busy timeout
    finally:
        await end()
    assert await writer.flush()
    assert len(await store.samples("CS-OK", "tx-ok")) == 2
    assert len(await store.commands("CS-GONE")) == 1
    assert len(await store.commands("CS-OK")) == 1
    assert await store.quarantined() == []  # an outage quarantines nothing
    assert writer.failed_writes == 1


async def test_an_outage_keeps_the_queue_bounded_and_counts_what_it_drops(
    store: FleetStore, fleet_db_url: str, request: pytest.FixtureRequest
) -> None:
    """Rows beyond ``max_queued_rows`` are dropped, oldest samples first, both as they
    arrive and when a failed batch is merged back; each is counted per table, on the metric
    too, and the rest lands once the database is back."""
    pg_dsn = request.getfixturevalue("pg_dsn") if fleet_db_url.startswith("postgres") else None
    start, end = await _outage(fleet_db_url, pg_dsn)
    fleet = FleetState(max_queued_rows=4)
    writer = WriteBehind(fleet, store, max_queued_rows=4)
    await start()
    try:
        for s in range(10):
            tx(fleet, "CS-OK", "tx-ok", s)  # 4 queued: 6 dropped as they arrive
        await commands_of_both_outcomes(fleet)  # 4 samples + 2 commands: over the bound
        assert not await writer.flush()  # merged back: 2 more samples dropped, not commands
    finally:
        await end()
    assert await writer.flush()
    landed = await store.samples("CS-OK", "tx-ok")
    assert [r["energy_export_wh"] for r in landed] == [108.0, 109.0]  # the newest
    assert len(await store.commands("CS-GONE")) == len(await store.commands("CS-OK")) == 1
    assert writer.dropped_rows() == {"session_samples": 8}
    assert len(landed) + writer.dropped_rows()["session_samples"] == 10
    assert await store.quarantined() == []
    line = 'vpp_fleet_db_dropped_rows_total{table="session_samples"} 8.0'
    assert line in exposition(fleet, writer)


async def test_write_task_keeps_recording_after_a_poison_row(store: FleetStore) -> None:
    """The running write-behind task: a refused row does not stop later writes."""
    fleet = FleetState()
    writer = WriteBehind(fleet, store, interval_s=0.01)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run(), name="write-behind")
        tx(fleet, "CS-BAD", "tx-bad", 0, seq_no=2**63)
        for s in range(0, 50, 10):
            tx(fleet, "CS-OK", "tx-ok", s)

        async def all_landed() -> bool:
            return len(await store.samples("CS-OK", "tx-ok")) == 5

        await eventually_async(all_landed)
        writer.stop()
    assert writer.quarantined_rows[("sessions", "database")] >= 1


async def test_a_database_of_version_1_gains_the_quarantine_table(fleet_db_url: str) -> None:
    """An existing fleet database (migration 1 only) is upgraded when the core opens it."""
    first = await FleetStore.open(fleet_db_url)
    async with first._engine.begin() as conn:  # back to what a version-1 core left
        await conn.execute(text("DROP TABLE write_quarantine"))
        await conn.execute(text("DELETE FROM schema_version WHERE version = 2"))
    assert 2 not in await first.schema_versions()  # (later migrations, e.g. 5, may stay)
    await first.close()
    store = await FleetStore.open(fleet_db_url)
    try:
        assert 2 in await store.schema_versions()
        assert await store.quarantined() == []
    finally:
        await store.close()
