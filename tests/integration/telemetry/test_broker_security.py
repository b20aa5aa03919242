"""The production broker config (etc/mosquitto) enforces identity: no certificate, no
connection; a site certificate publishes only under its own ``site/{cn}``."""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import socket
import ssl
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import CollectorRegistry

from tests.conftest import TestPki
from tests.integration.telemetry.harness import RecordingStore, ingest_config
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_common.pki import CertificateAuthority, client_context
from v2g_common.telemetry import SiteSummary, encode_message, summary_topic
from v2g_common.telemetry.link import Acked, BrokerEndpoint, LinkUp, MqttLink
from vpp_core.ingest import IngestMetrics, TelemetryIngest

pytestmark = pytest.mark.integration

# MQTT 3.1.1 CONNECT, clean session, keepalive 60, client id "x"
CONNECT = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x"
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
NOT_AUTHORIZED = 0x87


def _mqtt_over_tls(port: int, ctx: ssl.SSLContext) -> bytes:
    """TLS handshake, CONNECT, and the first bytes the broker answers; b"" when the broker
    refuses (TLS alert during the handshake, or, with TLS 1.3, on the first read)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(CONNECT)
            return tls.recv(64)
    except (ssl.SSLError, ConnectionError):
        return b""


def test_client_with_certificate_gets_connack(broker: ProductionBroker, pki: TestPki) -> None:
    cert, key = pki.client("site-a")
    ctx = client_context(pki.ca, cert=cert, key=key)
    assert _mqtt_over_tls(broker.port, ctx) == CONNACK_ACCEPTED


def test_client_without_certificate_cannot_connect(broker: ProductionBroker, pki: TestPki) -> None:
    assert _mqtt_over_tls(broker.port, client_context(pki.ca)) == b""


def test_certificate_from_another_ca_cannot_connect(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path
) -> None:
    rogue = CertificateAuthority.create(common_name="Rogue CA").issue_client("site-a")
    rogue.write(tmp_path / "rogue.pem", tmp_path / "rogue.key")
    ctx = client_context(pki.ca, cert=tmp_path / "rogue.pem", key=tmp_path / "rogue.key")
    assert _mqtt_over_tls(broker.port, ctx) == b""


def _summary(site: str, seq: int) -> SiteSummary:
    return SiteSummary(
        site=site,
        region="north",
        stream="forged",
        seq=seq,
        at=dt.datetime.now(dt.UTC),
        interval_s=10,
        chargers=1,
        chargers_reporting=1,
        sessions_connected=1,
        v2x_sessions=1,
        available_discharge_w=1e6,
        available_charge_w=0,
        power_w=0,
        energy_import_wh=0,
        energy_export_wh=0,
        fail_safe=False,
    )


async def _next_ack(link: MqttLink) -> Acked:
    while True:
        event = await link.events.get()
        if isinstance(event, Acked):
            return event


async def test_site_certificate_cannot_publish_under_another_site(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path, core_store: RecordingStore
) -> None:
    store = core_store
    cert, key = pki.client("site-a")
    endpoint = BrokerEndpoint("127.0.0.1", broker.port, "site-a", pki.ca, cert, key)
    metrics = IngestMetrics(CollectorRegistry())
    async with TelemetryIngest(ingest_config(pki, broker), store, metrics=metrics) as ingest:
        await asyncio.wait_for(ingest.subscribed.wait(), 10)
        link = MqttLink(endpoint, loop=asyncio.get_running_loop(), queue_size=16)
        link.open()
        try:
            assert isinstance(await asyncio.wait_for(link.events.get(), 10), LinkUp)
            link.publish(summary_topic("north", "site-b"), encode_message(_summary("site-b", 1)))
            refused = await asyncio.wait_for(_next_ack(link), 10)
            link.publish(summary_topic("north", "site-a"), encode_message(_summary("site-a", 1)))
            allowed = await asyncio.wait_for(_next_ack(link), 10)
            await store.wait_until(lambda: len(store.accepted) >= 1, timeout_s=10)
        finally:
            link.close()
    assert refused.reason_code == NOT_AUTHORIZED
    assert allowed.reason_code < 0x80
    # same connection, so the forged message would have been delivered before this one
    assert [(m.site, m.seq) for m in store.accepted + store.duplicates] == [("site-a", 1)]
    assert {r.site for r in await store.site_records()} == {"site-a"}


def test_broker_announces_the_production_limits(broker: ProductionBroker, pki: TestPki) -> None:
    """What etc/mosquitto.conf promises MQTT v5 clients, as CONNACK says it."""
    cert, key = pki.client("site-a")
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="site-a", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(client_context(pki.ca, cert=cert, key=key))
    client.on_connect = lambda _c, _u, _f, rc, props: answers.put((rc, props))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        reason, props = answers.get(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
    assert str(reason) == "Success"
    assert props.ReceiveMaximum == 100  # max_inflight_messages
    assert props.MaximumQoS == 1
    assert props.RetainAvailable == 0
    assert props.MaximumPacketSize == 65536
