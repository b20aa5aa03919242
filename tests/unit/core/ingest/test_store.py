"""The regional-state store: idempotent by (site, stream, seq), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from v2g_common.telemetry import SiteEvent, SiteSummary
from vpp_core.ingest import TelemetrySqlStore, TelemetryStoreError
from vpp_core.ingest.store import SCHEMA_VERSION, schema_table

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


def summary(site: str, seq: int, *, stream: str = "s1", power_w: float = -1000.0) -> SiteSummary:
    return SiteSummary(
        site=site,
        region="north",
        stream=stream,
        seq=seq,
        at=T0 + dt.timedelta(seconds=seq),
        interval_s=10,
        chargers=1,
        chargers_reporting=1,
        sessions_connected=1,
        v2x_sessions=1,
        available_discharge_w=7000,
        available_charge_w=11000,
        power_w=power_w,
        soc_min_pct=50,
        soc_mean_pct=50,
        soc_max_pct=50,
        energy_import_wh=seq,
        energy_export_wh=0,
        fail_safe=False,
    )


def event(site: str, seq: int, *, stream: str = "s1") -> SiteEvent:
    return SiteEvent(
        site=site,
        region="north",
        stream=stream,
        seq=seq,
        at=T0,
        code="FAIL_SAFE_TRIP",
        severity="critical",
        detail={"k": 1},
    )


async def test_redelivery_is_refused_within_and_across_batches(store: TelemetrySqlStore) -> None:
    first = await store.record_batch(
        [summary("a", 1), summary("a", 2), summary("a", 2), summary("b", 1)], received_at=T0
    )
    assert first == [True, True, False, True]
    again = await store.record_batch(
        [summary("a", 1), summary("a", 2), summary("a", 3)], received_at=T0
    )
    assert again == [False, False, True]
    records = {r.site: r for r in await store.site_records()}
    assert records["a"].seq == 3
    assert records["a"].energy_import_wh == 3
    assert records["a"].at == T0 + dt.timedelta(seconds=3)


async def test_events_share_the_sequence_and_are_kept(store: TelemetrySqlStore) -> None:
    outcomes = await store.record_batch(
        [summary("a", 1), event("a", 2), event("a", 2), summary("a", 3)], received_at=T0
    )
    assert outcomes == [True, True, False, True]
    [stored] = await store.events(site="a")
    assert (stored.seq, stored.code, stored.detail) == (2, "FAIL_SAFE_TRIP", {"k": 1})
    assert stored.at == T0


async def test_a_new_stream_starts_over(store: TelemetrySqlStore) -> None:
    """A site whose outbox file was recreated counts from 1 again: not duplicates."""
    await store.record_batch([summary("a", 50)], received_at=T0)
    assert await store.record_batch([summary("a", 1, stream="s2")], received_at=T0) == [True]
    assert await store.record_batch([summary("a", 1, stream="s2")], received_at=T0) == [False]
    [record] = await store.site_records()
    assert (record.stream, record.seq) == ("s2", 1)


async def test_received_at_is_kept_aware(store: TelemetrySqlStore) -> None:
    received = T0 + dt.timedelta(minutes=5)
    await store.record_batch([summary("a", 1)], received_at=received)
    [record] = await store.site_records()
    assert record.received_at == received
    assert record.received_at.tzinfo is not None


async def test_migrate_is_idempotent_and_refuses_a_newer_schema(store: TelemetrySqlStore) -> None:
    await store.migrate()
    async with store.engine.begin() as conn:
        await conn.execute(schema_table.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(TelemetryStoreError, match="newer"):
        await store.migrate()


async def test_empty_batch(store: TelemetrySqlStore) -> None:
    assert await store.record_batch([], received_at=T0) == []
