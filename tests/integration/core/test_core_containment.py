"""No background failure ends the core (issue 13 item 1): a failure is injected into each kind
of background task of a running core (``run_core`` with CSMS, fleet database, API, ingest and
report publisher on a TLS mosquitto); every one is counted on the core's /metrics, and the
core still answers OCPP and the API, records to its database, re-reads its registry, ingests
telemetry and publishes reports.

Each injection makes the task's coroutine raise ``RuntimeError`` the first time it is called
(the components are otherwise the real ones); on main the first such failure left the core's
TaskGroup and the process exited."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import TestPki
from tests.doubles.waiting import eventually_async
from tests.integration.core.csms.conftest import CsmsUnderTest, tx_payload
from tests.integration.core.test_core_grid_services import TOKEN, core_config, report_listener
from v2g_common.telemetry import SiteSummary, encode_message, summary_topic
from v2g_common.telemetry.link import Acked, BrokerEndpoint, LinkUp, MqttLink
from v2g_sim.broker import MosquittoBroker, free_port
from vpp_core import app as core_app
from vpp_core.api import server as api_server
from vpp_core.csms.commands import StationCommander
from vpp_core.csms.handlers import StationEndpoint
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.survey import ProfileSurvey
from vpp_core.fleet import FleetStore, StationRegistry, WriteBehind
from vpp_core.heap import HeapPolicy
from vpp_core.ingest.ingest import TelemetryIngest
from vpp_core.report_publisher import ReportPublisher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
PASSWORD = "lab-password-0123456789"
NOW = datetime.now(UTC).replace(microsecond=0)

#: task label -> (class, coroutine method) into which a failure is injected
INJECTED: dict[str, tuple[type, str]] = {
    "fleet-write-behind": (WriteBehind, "run"),
    "registry-refresh": (core_app._Core, "_refresh_registry"),
    "heap-policy": (HeapPolicy, "run"),
    "csms-profile-resync": (StationCommander, "run_resyncs"),
    "csms-connection": (StationEndpoint, "run"),
    "profile-survey": (ProfileSurvey, "run"),
    "dispatch": (DispatchRunner, "_execute"),
    "ingest-consume": (TelemetryIngest, "_consume"),
    "report-publisher-acks": (ReportPublisher, "_read_acks"),
    "api-server": (api_server._Server, "serve"),
}


def fail_first_call(task: str, original: Callable[..., Awaitable[Any]]) -> Any:
    fired = False

    async def injected(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal fired
        if not fired:
            fired = True
            raise RuntimeError(f"injected failure in {task}")
        return await original(self, *args, **kwargs)

    return injected


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> None:
    for task, (cls, name) in INJECTED.items():
        monkeypatch.setattr(cls, name, fail_first_call(task, getattr(cls, name)))


class Core:
    def __init__(self, config: Any, csms: CsmsUnderTest, store: FleetStore) -> None:
        self.config = config
        self.csms = csms
        self.store = store
        self.api = f"http://127.0.0.1:{config.api.port}"
        self.metrics = f"http://127.0.0.1:{config.metrics.port}/metrics"

    async def failures(self) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.metrics)).text
        out = {}
        for line in text.splitlines():
            if line.startswith("vpp_core_task_failures_total{"):
                labels, value = line.rsplit(" ", 1)
                out[labels.split('task="')[1].split('"')[0]] = float(value)
        return out


@pytest.fixture
async def core(
    tmp_path: Path, pki: TestPki, mosquitto_tls: MosquittoBroker, injected: None
) -> AsyncIterator[Core]:
    base = core_config(tmp_path, pki, mosquitto_tls)
    fleet = {"registry_refresh_s": 0.1, "write_interval_s": 0.05}
    runtime = {"gc_freeze_after_start": False, "gc_freeze_interval_s": 0.2}
    config = base.model_copy(
        update={
            "metrics": base.metrics.model_copy(update={"port": free_port()}),
            "fleet": base.fleet.model_copy(update=fleet),
            "runtime": base.runtime.model_copy(update=runtime),
        }
    )
    store = await FleetStore.open(config.fleet.database_url)
    registry = StationRegistry(store)
    await registry.add(
        "CS-0001", security_profile=1, site="s", region="north", password=PASSWORD, now=NOW,
    )  # fmt: skip
    stop = asyncio.Event()
    thresholds = gc.get_threshold()  # run_core tunes the collector of its process
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(core_app.run_core(config, stop=stop, on_ready=ready.set_result))
    try:
        csms = await asyncio.wait_for(asyncio.shield(ready), 30)
        yield Core(config, CsmsUnderTest(csms, pki), store)
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task  # the core ran to its orderly end: nothing escaped it
        await store.close()
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def publish_summary(pki: TestPki, broker: MosquittoBroker) -> None:
    summary = SiteSummary(
        site="site-a", region="north", stream="s", seq=1, at=dt.datetime.now(dt.UTC),
        interval_s=10, chargers=1, chargers_reporting=1, sessions_connected=1, v2x_sessions=1,
        available_discharge_w=7000, available_charge_w=11000, power_w=-2000,
        energy_import_wh=0, energy_export_wh=0, fail_safe=False,
    )  # fmt: skip
    cert, key = pki.client("site-a")
    link = MqttLink(
        BrokerEndpoint("127.0.0.1", broker.port, "site-a-raw", pki.ca, cert, key),
        loop=asyncio.get_running_loop(),
        queue_size=16,
    )
    link.open()
    try:
        assert isinstance(await asyncio.wait_for(link.events.get(), 10), LinkUp)
        link.publish(summary_topic("north", "site-a"), encode_message(summary))
        async with asyncio.timeout(10):
            while not isinstance(await link.events.get(), Acked):
                pass
    finally:
        link.close()


async def test_a_failure_in_each_background_task_is_contained_and_counted(
    core: Core, pki: TestPki, mosquitto_tls: MosquittoBroker
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # the first connection's endpoint fails: that connection ends, the station comes back
    with pytest.raises(ConnectionClosed):
        async with core.csms.station("CS-0001", password=PASSWORD) as first:
            await first.call("Heartbeat", {})
    listener, reports = report_listener(pki, mosquitto_tls)
    try:
        async with (
            core.csms.station("CS-0001", password=PASSWORD) as station,
            httpx.AsyncClient(base_url=core.api, headers=auth, timeout=10) as http,
        ):
            # a dispatch whose task fails (the injection) is refused, not promised; later
            # ones run
            body = {"power_mw": 0.01, "direction": "discharge", "duration_s": 1}
            refused = await http.post("/api/v1/dispatches", json=body)
            assert refused.status_code == 503, refused.text
            assert "its task failed" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "5"

            async def all_counted() -> bool:
                return await core.failures() == dict.fromkeys(INJECTED, 1.0)

            await eventually_async(all_counted, timeout_s=30)
            # OCPP is answered, and the restarted write-behind records it
            assert (await station.call("Heartbeat", {}))[0] == 3
            ts = NOW.isoformat().replace("+00:00", "Z")
            started = await station.call("TransactionEvent", tx_payload("Started", 0, ts))
            assert started[0] == 3

            async def recorded() -> bool:
                return await core.store.session_row("CS-0001", "tx-1") is not None

            await eventually_async(recorded)
            # the API answers, the fleet view included
            fleet = await http.get("/api/v1/fleet")
            assert fleet.status_code == 200
            assert [s["station_id"] for s in fleet.json()["sessions"]] == ["CS-0001"]
            assert (await http.get("/api/v1/dispatches")).status_code == 200
            # the ingest consumes again
            await publish_summary(pki, mosquitto_tls)

            async def ingested() -> bool:
                regions = (await http.get("/api/v1/regions")).json()["regions"]
                return any(r["region"] == "north" for r in regions)

            await eventually_async(ingested)
            # the report publisher gets its PUBACKs again: a second dispatch's report is out
            created = await http.post("/api/v1/dispatches", json=body)
            assert created.status_code == 201, created.text
            dispatch_id = created.json()["id"]
            topic, payload = await asyncio.to_thread(reports.get, timeout=30)
            assert topic == f"vpp/v1/dispatch/{dispatch_id}/report"
            assert json.loads(payload)["dispatch_id"] == dispatch_id
        # the registry refresh runs again: a station added now is admitted
        registry = StationRegistry(core.store)
        await registry.add(
            "CS-0009", security_profile=1, site="s", region="north", password=PASSWORD, now=NOW,
        )  # fmt: skip

        async def admitted() -> bool:
            try:
                async with core.csms.station("CS-0009", password=PASSWORD) as late:
                    return (await late.call("Heartbeat", {}))[0] == 3
            except Exception:
                return False

        await eventually_async(admitted)
        assert await core.failures() == dict.fromkeys(INJECTED, 1.0)  # nothing else failed
    finally:
        listener.loop_stop()
        listener.disconnect()
