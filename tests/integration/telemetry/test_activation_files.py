"""Activation files on request over the production broker (TLS, client certificates, the
shipped ACL): the core asks a site's gateway for its latest activation file, a named one, or
a window of one, and gets it in parts that join to the file the activation log wrote; bad
requests are answered with a reason; another site can neither ask nor read the answers."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import TestPki
from tests.integration.telemetry.harness import (
    SettableCharger,
    charger_state,
    uplink_config,
)
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_common.telemetry.activation_files import (
    ACTIVATION_FILE_FILTER,
    FilePart,
    activation_request_topic,
    join_parts,
)
from v2g_common.telemetry.link import (
    Acked,
    BrokerEndpoint,
    LinkUp,
    MqttLink,
    Received,
    Subscribed,
)
from v2g_gateway.activation_files import ActivationFiles
from v2g_gateway.frequency_log import ActivationRecorder, FrequencySample
from v2g_gateway.frequency_log_service import FrequencyLogSection, FrequencyLogService
from v2g_gateway.uplink import SiteUplink

pytestmark = pytest.mark.integration
E = TypeVar("E")
SITE = "site-a"
REQUEST_TOPIC = activation_request_topic("north", SITE)
NOT_AUTHORIZED = 0x87


def record_activations(directory: Path) -> list[Path]:
    """Two activations as the gateway's activation log writes them: 10 s before, a 2 s dip
    to 49.8 Hz, 300 s after it (about 3,100 rows of 100 ms: several 40 kB parts)."""
    section = FrequencyLogSection(enabled=True, directory=directory, before_s=10.0, after_s=300.0)
    stamps = iter(["2026-12-03T14:00:00+00:00", "2026-12-03T15:00:00+00:00"])
    service = FrequencyLogService(section, wall=lambda: datetime.fromisoformat(next(stamps)))
    recorder = ActivationRecorder(before_s=10.0, after_s=300.0)
    k = 0
    for _ in range(2):
        for freq in [50.0] * 200 + [49.8] * 20 + [50.0] * 3100:
            power = (freq - 50.0) * 50000.0
            service.record(recorder.add(FrequencySample(k / 10, freq, power, power * 0.98)))
            k += 1
    return sorted(directory.glob("activation-*.csv"))


@asynccontextmanager
async def client(pki: TestPki, broker: ProductionBroker, cn: str) -> AsyncIterator[MqttLink]:
    cert, key = pki.client(cn)
    endpoint = BrokerEndpoint(
        host="127.0.0.1", port=broker.port, client_id=f"{cn}-requester",
        ca_file=pki.ca, cert_file=cert, key_file=key, session_expiry_s=0,
    )  # fmt: skip
    link = MqttLink(endpoint, loop=asyncio.get_running_loop(), queue_size=1000)
    link.open()
    try:
        await next_event(link, LinkUp)
        yield link
    finally:
        link.close()


async def next_event(link: MqttLink, kind: type[E], *, timeout_s: float = 10.0) -> E:
    async with asyncio.timeout(timeout_s):
        while True:
            event = await link.events.get()
            if isinstance(event, kind):
                return event


async def ask(link: MqttLink, request: object, *, request_id: str | None = None) -> list[FilePart]:
    """Publish ``request`` (raw bytes, or JSON of it) and collect every part of its answer
    (those of ``request_id``: default, the request's own)."""
    if isinstance(request, dict):
        request_id = request.get("request_id", request_id)
    payload = request if isinstance(request, bytes) else json.dumps(request).encode()
    link.publish(REQUEST_TOPIC, payload)
    parts: list[FilePart] = []
    while not parts or len(parts) < parts[0].parts:
        received = await next_event(link, Received)
        part = FilePart.model_validate_json(received.payload)
        if part.request_id == request_id:
            parts.append(part)
    return parts


@pytest.fixture
async def site_uplink(
    tmp_path: Path, pki: TestPki, broker: ProductionBroker
) -> AsyncIterator[SiteUplink]:
    files = ActivationFiles(tmp_path / "activations", site=SITE)
    record_activations(files.directory)
    config = uplink_config(pki, broker, tmp_path, SITE, summary_interval_s=60.0)
    charger = SettableCharger(charger_state(SITE))
    async with SiteUplink(config, {SITE: charger}, requests=files.answer) as uplink:
        yield uplink


async def test_the_core_gets_the_files_whole_or_a_window(
    site_uplink: SiteUplink, pki: TestPki, broker: ProductionBroker, tmp_path: Path
) -> None:
    first, latest = sorted((tmp_path / "activations").glob("activation-*.csv"))
    async with client(pki, broker, "core") as core:
        core.subscribe(ACTIVATION_FILE_FILTER)
        assert (await next_event(core, Subscribed)).granted
        assert site_uplink.requests is not None
        await wait_subscribed(core, site_uplink)

        parts = await ask(core, {"request_id": "r-latest"})
        assert {(p.status, p.request_id, p.site, p.file) for p in parts} == {
            ("ok", "r-latest", SITE, latest.name)
        }
        assert len(parts) >= 2  # the broker's 64 KiB packet limit: the file comes in parts
        assert join_parts(parts) == latest.read_text()

        parts = await ask(core, {"request_id": "r-first", "file": first.name})
        assert join_parts(parts) == first.read_text()

        window = {"request_id": "r-window", "file": first.name, "from_s": -1.0, "to_s": 2.5}
        parts = await ask(core, window)
        rows = list(csv.DictReader(io.StringIO(join_parts(parts))))
        assert [float(r["t_s"]) for r in rows] == pytest.approx([k / 10 for k in range(-10, 26)])
        assert min(float(r["freq_hz"]) for r in rows) == 49.8


@pytest.mark.parametrize(
    ("request_", "request_id", "reason"),
    [
        (b"{not json", None, "bad request: request: Invalid JSON"),
        ({"request_id": "r1", "file": "../../etc/passwd"}, "r1", "must be an activation file"),
        (
            {"request_id": "r2", "file": "activation-20261203T160000.000000Z.csv"},
            "r2",
            "no activation file activation-20261203T160000.000000Z.csv",
        ),
        ({"request_id": "r3", "from_s": 5, "to_s": 1}, "r3", "from_s is after to_s"),
        ({"request_id": "r4", "colour": "red"}, "r4", "colour: Extra inputs are not permitted"),
        ({"file": "activation-20261203T160000.000000Z.csv"}, None, "request_id: Field required"),
    ],
)
async def test_bad_requests_are_answered_with_a_reason(
    site_uplink: SiteUplink,
    pki: TestPki,
    broker: ProductionBroker,
    request_: object,
    request_id: str | None,
    reason: str,
) -> None:
    async with client(pki, broker, "core") as core:
        core.subscribe(ACTIVATION_FILE_FILTER)
        assert (await next_event(core, Subscribed)).granted
        await wait_subscribed(core, site_uplink)
        (answer,) = await ask(core, request_)
        assert (answer.status, answer.request_id, answer.csv) == ("rejected", request_id, "")
        assert answer.reason is not None
        assert reason in answer.reason
        # ... and the site keeps answering.
        (ok, *_) = await ask(core, {"request_id": "after"})
        assert ok.status == "ok"


async def test_another_site_can_neither_ask_nor_read_the_answers(
    site_uplink: SiteUplink, pki: TestPki, broker: ProductionBroker
) -> None:
    assert site_uplink.requests is not None
    async with client(pki, broker, "site-b") as other, client(pki, broker, "core") as core:
        other.subscribe(ACTIVATION_FILE_FILTER)  # granted: the ACL filters each delivery
        await next_event(other, Subscribed)
        core.subscribe(ACTIVATION_FILE_FILTER)
        await next_event(core, Subscribed)
        await wait_subscribed(core, site_uplink)
        answered = site_uplink.requests.answered

        other.publish(REQUEST_TOPIC, json.dumps({"request_id": "spy"}).encode())
        assert (await next_event(other, Acked)).reason_code == NOT_AUTHORIZED
        await ask(core, {"request_id": "core-asks"})
        # The core's answer has come; none of it reaches site-b (bounded wait for absence).
        with pytest.raises(TimeoutError):
            await next_event(other, Received, timeout_s=1.0)
    assert site_uplink.requests.answered == answered + 1  # the core's, not site-b's


async def wait_subscribed(core: MqttLink, uplink: SiteUplink) -> None:
    """Until the site has subscribed to its requests: probes (one-row windows) until one is
    answered."""
    async with asyncio.timeout(10.0):
        for n in itertools.count():
            probe = {"request_id": f"probe-{n}", "from_s": 0.0, "to_s": 0.0}
            try:
                async with asyncio.timeout(0.5):
                    await ask(core, probe)
                return
            except TimeoutError:
                continue
