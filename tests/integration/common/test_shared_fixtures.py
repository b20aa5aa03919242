"""The shared fixtures are real: a TLS mosquitto that demands client certificates, and a
throw-away PostgreSQL database."""

from __future__ import annotations

import queue
import ssl

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import TestPki
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration


def _client(pki: TestPki, identity: str | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    if identity is None:
        client.tls_set(ca_certs=str(pki.ca))
    else:
        cert, key = pki.client(identity)
        client.tls_set(ca_certs=str(pki.ca), certfile=str(cert), keyfile=str(key))
    return client


def test_tls_broker_round_trip(mosquitto_tls: MosquittoBroker, pki: TestPki) -> None:
    got: queue.Queue[bytes] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    sub = _client(pki, "core")
    sub.on_message = lambda c, u, msg: got.put(msg.payload)
    sub.on_subscribe = lambda *a: subscribed.put(True)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("t/#", qos=1)
    sub.connect("127.0.0.1", mosquitto_tls.port)
    sub.loop_start()
    try:
        assert subscribed.get(timeout=10)
        pub = _client(pki, "site-a")
        pub.connect("127.0.0.1", mosquitto_tls.port)
        pub.loop_start()
        pub.publish("t/x", b"hello", qos=1).wait_for_publish(timeout=10)
        assert got.get(timeout=10) == b"hello"
        pub.loop_stop()
        pub.disconnect()
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_tls_broker_refuses_client_without_certificate(
    mosquitto_tls: MosquittoBroker, pki: TestPki
) -> None:
    client = _client(pki, None)
    with pytest.raises((ssl.SSLError, OSError, ConnectionError)):
        _connect_and_pump(client, mosquitto_tls.port)


def _connect_and_pump(client: mqtt.Client, port: int) -> None:
    """Connect and run the network loop: TLS 1.3 reports a missing client certificate on
    the first read, not in the handshake."""
    client.connect("127.0.0.1", port)
    for _ in range(50):
        rc = client.loop(timeout=0.1)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"loop rc={rc}")
    pytest.fail("broker accepted a client without a certificate")


async def test_pg_database_is_usable(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("CREATE TABLE t (x int)")
        await conn.execute("INSERT INTO t VALUES (42)")
        assert await conn.fetchval("SELECT x FROM t") == 42
    finally:
        await conn.close()
