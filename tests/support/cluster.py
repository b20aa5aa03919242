"""A whole vpp-core cluster on this machine, for tests and benchmarks: the test's own
nats-server (given), a PostgreSQL database (given), CSMS nodes and coordinators as real
``vpp-core run`` children (``[cluster] role``), HAProxy with the shipped config in front of
the CSMS nodes, and light-weight OCPP 2.1 stations (``ReconnectingStation``) that connect
through HAProxy and come back through it when their node dies."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import WebSocketException

from tests.integration.core.dispatch.ocpp_station import OcppStation
from tests.support.core_process import stop_process, toml_text
from tests.support.haproxy import HaproxyProcess
from v2g_sim.broker import free_port, wait_port
from v2g_sim.ev import EvSpec
from vpp_core.dispatch.clock import ScaledClock
from vpp_core.fleet import FleetStore, StationRegistry

__all__ = ["ClusterStack", "CoreRole", "ReconnectingStation"]

PASSWORD = "cluster-station-password"


class CoreRole:
    """One ``vpp-core run`` of the cluster."""

    def __init__(self, work: Path, name: str, sections: Mapping[str, Mapping[str, Any]]):
        self.work = work / name
        self.name = name
        self.sections = sections
        self.metrics_port = int(sections["metrics"]["port"])
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.work / "core.log"

    async def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "core.toml"
        config.write_text(toml_text(self.sections))
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vpp_core.app", "--config", str(config), "run",
                stdout=log, stderr=log,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout_s: float = 20.0) -> int | None:
        return await stop_process(self.proc, timeout_s)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def metric(self, name: str) -> float | None:
        """A metric's value (summed over labels), None when the process does not answer."""
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                text = (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return None
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name)] in " {"
        ]
        return sum(values) if values else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ReconnectingStation(OcppStation):
    """``OcppStation`` that reconnects (through the same URL: HAProxy) when its connection
    ends, resuming its transaction with an Updated event, as a station whose CSMS went away."""

    connects = 0
    #: False: once its connection ends the station stays away (its node "just died").
    reconnect = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The CSMS's answers received, by action (each answered call is one fleet change).
        self.answered: Counter[str] = Counter()
        #: When each meter value the CSMS answered was taken, with the answer's time.
        self.meter_answered: list[tuple[datetime, float]] = []
        #: Round trip of each call (s), and when the last SetChargingProfile arrived.
        self.latencies_s: list[float] = []
        self.profile_at: float | None = None

    def _handle(self, action: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        if action == "SetChargingProfile":
            self.profile_at = time.monotonic()
        return super()._handle(action, payload)

    async def _call(self, action: str, payload: dict[str, Any]) -> Any:
        sent = time.perf_counter()
        answer = await super()._call(action, payload)
        self.latencies_s.append(time.perf_counter() - sent)
        self.answered[action] += 1
        if action == "TransactionEvent":
            taken = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))
            self.meter_answered.append((taken, time.monotonic()))
        return answer

    async def run_reconnecting(
        self, url: str, *, ready: asyncio.Event, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            # refused, closed by HAProxy with no node up (a failed handshake), or lost
            with contextlib.suppress(WebSocketException, OSError, TimeoutError, ExceptionGroup):
                await self._connection(url, ready, stop)
            if not self.reconnect:
                return
            if not stop.is_set():
                await asyncio.sleep(0.5)

    async def _connection(self, url: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with self.connect(url, PASSWORD) as ws:
            self._ws = ws
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                reader = tg.create_task(self._read_then_fail(), name=f"{self.identity}-reader")
                if self.connects == 0:
                    await self._start_session()
                else:
                    await self._resume_session()
                self.connects += 1
                ready.set()
                await self._live(stop)
                reader.cancel()

    async def _read_then_fail(self) -> None:
        try:
            await self._read()
        finally:  # calls waiting for an answer on a dead connection fail at once
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
                    fut.exception()  # retrieved: nobody may be waiting any more
            self._waiting.clear()
            if self._ws is not None:
                await self._ws.close()

    async def _resume_session(self) -> None:
        await self._call(
            "BootNotification",
            {"chargingStation": {"model": "SIM", "vendorName": "VPP"}, "reason": "PowerUp"},
        )
        if self.plugged:
            await self._tx_event("Updated", "MeterValuePeriodic", self.clock.now())


class ClusterStack:
    """``async with ClusterStack(work, database_url, nats_url, stations=[...])``."""

    def __init__(
        self,
        work: Path,
        *,
        database_url: str,
        nats_url: str,
        station_ids: list[str],
        csms_nodes: int = 2,
        coordinators: int = 2,
        dispatch: Mapping[str, Any] | None = None,
        meter_every_s: float = 2.0,
    ) -> None:
        self.work = work
        self.database_url = database_url
        self.nats_url = nats_url
        self.station_ids = station_ids
        self.token = "tok-" + secrets.token_urlsafe(24)
        self.dispatch = dict(dispatch or {})
        self.csms = [self._csms_node(i + 1) for i in range(csms_nodes)]
        self.coordinators = [self._coordinator(i + 1) for i in range(coordinators)]
        self.haproxy = HaproxyProcess(
            work / "haproxy",
            [
                (n.name, int(n.sections["csms"]["port"]), int(n.sections["cluster"]["health_port"]))
                for n in self.csms
            ],
        )
        clock = ScaledClock(start=datetime.now(UTC), speed=1.0)
        ev = EvSpec(
            soc_pct=70.0, max_discharge_w=11_000.0, min_discharge_w=1_400.0, departure_in_s=None
        )
        self.stations = {
            sid: ReconnectingStation(sid, ev, clock, tau_s=1.0, meter_every_s=meter_every_s)
            for sid in station_ids
        }
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _common(self, name: str) -> dict[str, dict[str, Any]]:
        return {
            "fleet": {
                "database_url": self.database_url,
                "quarantine_file": str(self.work / name / "quarantine.jsonl"),
            },
            "metrics": {"host": "127.0.0.1", "port": free_port()},
            "runtime": {"gc_freeze_after_start": False},
            "cluster": {"nats_url": self.nats_url, "node_id": name, "node_timeout_s": 3.0},
        }

    def _csms_node(self, i: int) -> CoreRole:
        sections = self._common(f"csms-{i}")
        sections["csms"] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "allow_security_profile_1": True,
            "ping_interval_s": 0.0,
        }
        sections["cluster"].update(role="csms", health_port=free_port())
        return CoreRole(self.work, f"csms-{i}", sections)

    def _coordinator(self, i: int) -> CoreRole:
        name = f"coordinator-{i}"
        sections = self._common(name)
        token_file = self.work / name / "api-token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        sections["api"] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "bearer_token_file": token_file,
        }
        sections["dispatch"] = self.dispatch
        sections["cluster"].update(role="coordinator", lease_ttl_s=3.0)
        return CoreRole(self.work, name, sections)

    @property
    def station_url(self) -> str:
        return f"ws://127.0.0.1:{self.haproxy.port}/ocpp"

    def api(self, coordinator: CoreRole) -> httpx.AsyncClient:
        port = coordinator.sections["api"]["port"]
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )

    async def __aenter__(self) -> ClusterStack:
        await self._register()
        try:
            for role in [*self.csms, *self.coordinators]:  # all at once: they find each other
                await role.start()
            for node in self.csms:
                await asyncio.to_thread(
                    wait_port, "127.0.0.1", node.sections["cluster"]["health_port"], timeout_s=60
                )
            self.haproxy.start()
            await self.wait_active(timeout_s=60)
        except BaseException:
            await self.__aexit__()  # no process outlives a failed start
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for role in [*self.coordinators, *self.csms]:
            await role.stop()
        self.haproxy.stop()

    async def stop_stations(self, timeout_s: float = 15.0) -> None:
        """Every station ends its step (a call in flight gets its answer), closes its
        connection and stays away."""
        self._stop.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in self._tasks:
            task.cancel()

    async def _register(self) -> None:
        store = await FleetStore.open(self.database_url)
        try:
            registry = StationRegistry(store)
            now = datetime.now(UTC)
            for sid in self.station_ids:
                await registry.add(
                    sid, security_profile=1, site=f"site-{sid}", region="north",
                    password=PASSWORD, now=now,
                )  # fmt: skip
        finally:
            await store.close()

    async def connect_stations(self, *, timeout_s: float = 60.0) -> None:
        readies = []
        for sid, station in self.stations.items():
            ready = asyncio.Event()
            readies.append(ready)
            self._tasks.append(
                asyncio.create_task(
                    station.run_reconnecting(self.station_url, ready=ready, stop=self._stop),
                    name=f"station-{sid}",
                )
            )
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(r.wait() for r in readies))

    async def wait_csms_healthy(self, *, timeout_s: float) -> None:
        """Every CSMS node answers its health check with 200."""

        async def healthy(node: CoreRole) -> bool:
            port = node.sections["cluster"]["health_port"]
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=1) as http:
                    return (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
            return False

        async with asyncio.timeout(timeout_s):
            while not all([await healthy(n) for n in self.csms]):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    async def wait_active(self, *, timeout_s: float, exclude: CoreRole | None = None) -> CoreRole:
        """The coordinator whose lease gauge reads 1 (and whose API answers)."""
        async with asyncio.timeout(timeout_s):
            while True:
                for c in self.coordinators:
                    if (
                        c is not exclude
                        and c.alive
                        and await c.metric("vpp_cluster_coordinator_active") == 1.0
                        and await self._api_up(c)
                    ):
                        return c
                await asyncio.sleep(0.1)

    async def _api_up(self, coordinator: CoreRole) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with self.api(coordinator) as api:
                return (await api.get("/fleet")).status_code == 200
        return False
