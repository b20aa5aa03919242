"""The ingest against the production broker: bad payloads are refused and counted without
blocking the rest, QoS 1 redeliveries are stored once, and what arrives while the ingest is
down waits in its persistent session."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import TestPki
from tests.integration.telemetry.harness import RecordingStore, ingest_config
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_common.telemetry import SiteSummary, encode_message, summary_topic
from v2g_common.telemetry.link import Acked, BrokerEndpoint, LinkUp, MqttLink
from vpp_core.ingest import IngestMetrics, TelemetryIngest

pytestmark = pytest.mark.integration


def summary(seq: int) -> bytes:
    return encode_message(
        SiteSummary(
            site="site-a",
            region="north",
            stream="s",
            seq=seq,
            at=dt.datetime.now(dt.UTC),
            interval_s=10,
            chargers=1,
            chargers_reporting=1,
            sessions_connected=1,
            v2x_sessions=1,
            available_discharge_w=7000,
            available_charge_w=11000,
            power_w=-2000,
            energy_import_wh=0,
            energy_export_wh=0,
            fail_safe=False,
        )
    )


async def publish_all(broker: ProductionBroker, pki: TestPki, payloads: list[bytes]) -> None:
    """Publish as site-a and wait for every PUBACK."""
    cert, key = pki.client("site-a")
    endpoint = BrokerEndpoint("127.0.0.1", broker.port, "site-a-raw", pki.ca, cert, key)
    link = MqttLink(endpoint, loop=asyncio.get_running_loop(), queue_size=256)
    link.open()
    try:
        assert isinstance(await asyncio.wait_for(link.events.get(), 10), LinkUp)
        for payload in payloads:
            link.publish(summary_topic("north", "site-a"), payload)
        acks = 0
        async with asyncio.timeout(10):
            while acks < len(payloads):
                acks += isinstance(await link.events.get(), Acked)
    finally:
        link.close()


async def test_bad_payloads_counted_duplicates_stored_once(
    broker: ProductionBroker, pki: TestPki, core_store: RecordingStore
) -> None:
    store = core_store
    registry = CollectorRegistry()
    async with TelemetryIngest(
        ingest_config(pki, broker), store, metrics=IngestMetrics(registry)
    ) as ingest:
        await asyncio.wait_for(ingest.subscribed.wait(), 10)
        await publish_all(broker, pki, [b"garbage", summary(1), summary(1), summary(2)])
        await store.wait_until(lambda: store.summary_seqs("site-a") == [1, 2], timeout_s=10)
        await store.wait_until(lambda: len(store.duplicates) == 1, timeout_s=10)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("vpp_ingest_invalid_total", reason="json") == 1
    assert sample("vpp_ingest_messages_total", kind="summary", outcome="duplicate") == 1
    assert sample("vpp_ingest_messages_total", kind="summary", outcome="accepted") == 2


async def test_messages_wait_in_the_broker_while_the_ingest_is_down(
    broker: ProductionBroker, pki: TestPki, core_store: RecordingStore
) -> None:
    store = core_store
    config = ingest_config(pki, broker)
    async with TelemetryIngest(config, store, metrics=IngestMetrics(CollectorRegistry())) as i:
        await asyncio.wait_for(i.subscribed.wait(), 10)  # creates the persistent session
    await publish_all(broker, pki, [summary(seq) for seq in range(1, 51)])
    broker.restart()  # and the broker restarts meanwhile: persistence keeps the queue
    async with TelemetryIngest(config, store, metrics=IngestMetrics(CollectorRegistry())):
        await store.wait_until(lambda: len(store.summary_seqs("site-a")) == 50, timeout_s=20)
    assert store.summary_seqs("site-a") == list(range(1, 51))
