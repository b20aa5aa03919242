"""``vpp-core run`` wires the grid-facing services: the HTTP API (bearer auth, dispatches,
fleet, regions from the ingest) and the dispatch report published on MQTT at QoS 1."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import TestPki
from v2g_common.config import parse_config
from v2g_sim.broker import MosquittoBroker, free_port
from vpp_core.app import run_core
from vpp_core.config import CoreConfig

pytestmark = pytest.mark.integration
TOKEN = "grid-operator-token-0123456789"


def core_config(tmp_path: Path, pki: TestPki, broker: MosquittoBroker) -> CoreConfig:
    token = tmp_path / "api-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    cert, key = pki.client("core")
    data = {
        "csms": {"host": "127.0.0.1", "port": free_port(), "allow_security_profile_1": True},
        "fleet": {"database_url": f"sqlite:///{tmp_path / 'fleet.db'}"},
        "metrics": {"port": 0},
        "dispatch": {"control_period_s": 0.2, "ramp_in_s": 0.0},
        "api": {"host": "127.0.0.1", "port": free_port(), "bearer_token_file": str(token)},
        "ingest": {
            "broker_host": "127.0.0.1",
            "broker_port": broker.port,
            "ca_file": str(pki.ca),
            "cert_file": str(cert),
            "key_file": str(key),
        },
    }
    return parse_config(CoreConfig, data, source="test")


@pytest.fixture
async def running_core(
    tmp_path: Path, pki: TestPki, mosquitto_tls: MosquittoBroker
) -> AsyncIterator[CoreConfig]:
    config = core_config(tmp_path, pki, mosquitto_tls)
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run_core(config, stop=stop, on_ready=lambda _csms: ready.set()))
    async with asyncio.timeout(20):
        await ready.wait()
    try:
        yield config
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task


def report_listener(pki: TestPki, broker: MosquittoBroker) -> tuple[mqtt.Client, queue.Queue]:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    cert, key = pki.client("site-b")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca), certfile=str(cert), keyfile=str(key))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("vpp/v1/dispatch/+/report", qos=1)
    client.on_subscribe = lambda *a: subscribed.put(True)
    client.on_message = lambda c, u, msg: got.put((msg.topic, msg.payload))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert subscribed.get(timeout=10)
    return client, got


async def test_api_requires_the_bearer_token(running_core: CoreConfig) -> None:
    assert running_core.api is not None
    base = f"http://127.0.0.1:{running_core.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.get("/api/v1/fleet")).status_code == 401
        bad = await http.get("/api/v1/fleet", headers={"Authorization": "Bearer wrong-token-xx"})
        assert bad.status_code == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/api/v1/fleet", headers=auth)).status_code == 200
        regions = await http.get("/api/v1/regions", headers=auth)
        assert regions.status_code == 200, regions.text
        invalid = await http.post("/api/v1/dispatches", headers=auth, json={"power_mw": -1})
        assert invalid.status_code == 422


async def test_dispatch_report_is_published_on_mqtt(
    running_core: CoreConfig, pki: TestPki, mosquitto_tls: MosquittoBroker
) -> None:
    assert running_core.api is not None
    client, got = report_listener(pki, mosquitto_tls)
    try:
        base = f"http://127.0.0.1:{running_core.api.port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=auth) as http:
            body = {"power_mw": 0.01, "direction": "discharge", "duration_s": 1}
            created = await http.post("/api/v1/dispatches", json=body)
            assert created.status_code == 201, created.text
            dispatch_id = created.json()["id"]
            # an empty fleet: accepted with its feasible part (nothing), and says so
            assert created.json()["plan"]["feasible"] is False
            topic, payload = await asyncio.to_thread(got.get, timeout=30)
            assert topic == f"vpp/v1/dispatch/{dispatch_id}/report"
            assert json.loads(payload)["dispatch_id"] == dispatch_id
            stored = await http.get(f"/api/v1/dispatches/{dispatch_id}/report")
            assert stored.status_code == 200
    finally:
        client.loop_stop()
        client.disconnect()
