"""Publish/ingest round trip through the production broker: the uplink's summaries and
events land in the core's store, on ``GET /api/v1/regions`` and in the metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tests.conftest import TestPki
from tests.integration.telemetry.harness import (
    RecordingStore,
    SettableCharger,
    charger_state,
    ingest_config,
    uplink_config,
)
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_common.telemetry import SiteEvent
from v2g_gateway.uplink import SiteUplink
from vpp_core.ingest import (
    IngestMetrics,
    TelemetryIngest,
    regions_router,
)

pytestmark = pytest.mark.integration


async def test_publish_ingest_round_trip(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path, core_store: RecordingStore
) -> None:
    store = core_store
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    chargers = {
        "cp-1": SettableCharger(charger_state("cp-1")),
        "cp-2": SettableCharger(charger_state("cp-2", soc_pct=(20.0,), sessions_connected=1)),
    }
    async with TelemetryIngest(ingest_config(pki, broker), store, metrics=metrics) as ingest:
        registry.register(ingest.region_collector())
        await asyncio.wait_for(ingest.subscribed.wait(), 10)
        config = uplink_config(pki, broker, tmp_path, "site-a", chargers=("cp-1", "cp-2"))
        async with SiteUplink(config, chargers) as uplink:
            await store.wait_until(lambda: len(store.summary_seqs("site-a")) >= 2, timeout_s=15)
            event_seq = uplink.record_event(
                "FAIL_SAFE_TRIP", severity="critical", charger="cp-2", detail={"after_s": 30}
            )
            await store.wait_until(
                lambda: any(
                    isinstance(m, SiteEvent) and m.seq == event_seq for m in store.accepted
                ),
                timeout_s=10,
            )
        app = FastAPI()
        app.include_router(regions_router(ingest.board, stale_after_s=60))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://core") as client:
            response = await client.get("/api/v1/regions")
        region_gauge = registry.get_sample_value(
            "vpp_region_available_discharge_w", {"region": "north"}
        )

    [record] = await store.site_records()
    assert (record.site, record.region, record.chargers_reporting) == ("site-a", "north", 2)
    assert record.available_discharge_w == 14000.0
    assert record.power_w == -7000.0
    assert (record.sessions_connected, record.v2x_sessions) == (3, 2)
    assert (record.soc_min_pct, record.soc_max_pct) == (20.0, 80.0)
    [event] = await store.inner.events(site="site-a")
    assert (event.code, event.charger, event.detail) == ("FAIL_SAFE_TRIP", "cp-2", {"after_s": 30})
    seqs = store.summary_seqs("site-a")
    assert seqs == sorted(set(seqs))

    assert response.status_code == 200
    [region] = response.json()["regions"]
    assert region["region"] == "north"
    assert (region["sites"], region["sites_fresh"]) == (1, 1)
    assert region["available_discharge_w"] == 14000.0
    assert region_gauge == 14000.0
    accepted = registry.get_sample_value(
        "vpp_ingest_messages_total", {"kind": "summary", "outcome": "accepted"}
    )
    assert accepted == len(seqs)


async def test_uplink_reports_when_no_core_session_exists(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path
) -> None:
    """A fresh broker without the core's persistent session acks with 0x10 (no matching
    subscribers): the message is gone, and the uplink says so instead of staying silent."""
    config = uplink_config(pki, broker, tmp_path, "site-b", summary_interval_s=3600)
    async with SiteUplink(config, {"cp-1": SettableCharger(charger_state("cp-1"))}) as uplink:
        await uplink.summarize_now()
        await asyncio.wait_for(uplink.flushed(), 10)
        status = uplink.status
    assert status.acknowledged >= 1
    assert status.unrouted == status.acknowledged
    assert status.outbox_messages == 0
