"""The demo's embedded stack, all on this machine and all real: a PKI (the
``scripts/provision-pki`` code), a TLS mosquitto with the production ACL, ``vpp-core run``
on SQLite as a child process, and the simulated fleet as ``v2g_sim.fleet_host``
processes running our gateway code. Used by ``vpp-demo`` and by ``tests/e2e``.

Every station gets security profile 3: a client certificate with CN = station id, used for
OCPP (mutual TLS) and, as its site's identity, for MQTT (each charger is its own site).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from v2g_common.pki import PkiLayout, provision
from v2g_gateway.station.store import read_installed_profiles
from v2g_sim.broker import MOSQUITTO, MosquittoBroker, free_port, wait_port
from v2g_sim.control import SimControlClient
from v2g_sim.ev import EvSpec
from v2g_sim.stack_config import core_toml, gateway_toml
from vpp_core.fleet import FleetStore, StationRegistry

__all__ = [
    "DemoStack",
    "FleetHostProcess",
    "FleetObservation",
    "StackSettings",
    "vpp_profiles_left",
]

REPO = Path(__file__).resolve().parents[3]  # packages/sim/v2g_sim/ -> the repository
PRODUCTION_ACL = REPO / "etc" / "mosquitto" / "vpp.acl"
REGION = "demo"
#: Below this measured power (W) a charger counts as discharging.
DISCHARGING_BELOW_W = -100.0


@dataclass(frozen=True, slots=True)
class StackSettings:
    """Knobs of the embedded stack (the demo's defaults; tests shorten the timers)."""

    stations: int = 50
    per_host: int = 25
    control_period_s: float = 0.1
    comms_loss_timeout_s: float = 30.0
    max_offline_duration_s: int = 30
    sampled_data_interval_s: float = 2.0
    summary_interval_s: float = 5.0
    dispatch_control_period_s: float = 2.0
    log_level: str = "WARNING"
    #: The core's fleet database; None = SQLite in the state directory.
    database_url: str | None = None
    #: ``[dispatch] resume_after_restart`` (read each time the core starts).
    resume_after_restart: bool = True
    #: ``[frequency_log]`` on every gateway, activations ending this long after the last
    #: excursion (None: no activation log).
    frequency_log_after_s: float | None = None

    @property
    def contact_probe_interval_s(self) -> float:
        """The stations' idle-link probe: well inside the comms-loss timeout."""
        return min(10.0, self.comms_loss_timeout_s / 3)

    @property
    def station_ids(self) -> list[str]:
        return [f"CS-{i:04d}" for i in range(1, self.stations + 1)]


@dataclass(slots=True)
class FleetHostProcess:
    """One ``v2g_sim.fleet_host`` child and the stations it runs."""

    index: int
    socket: Path
    status_file: Path
    device_ids: dict[str, int]
    proc: asyncio.subprocess.Process | None = None

    def sim(self) -> SimControlClient:
        # generous: a fleet host busy with its gateways' start-up on a loaded machine answers
        # in seconds, and a plug-in lost to an impatient client fails a whole e2e run
        return SimControlClient(self.socket, timeout_s=30.0)


@dataclass(frozen=True, slots=True)
class FleetObservation:
    """The fleet as its gateways see it (from the fleet hosts' status files)."""

    stations: int
    sessions: int
    discharging: int
    fail_safe: int
    net_power_w: float
    gateways: dict[str, dict[str, Any]]


def observe_hosts(hosts: list[FleetHostProcess]) -> FleetObservation:
    rows: dict[str, dict[str, Any]] = {}
    for host in hosts:
        with contextlib.suppress(OSError, ValueError):
            rows.update(json.loads(host.status_file.read_text())["gateways"])
    live = [r for r in rows.values() if "power_w" in r]
    return FleetObservation(
        stations=len(rows),
        sessions=sum(1 for r in live if r["ev_connected"]),
        discharging=sum(1 for r in live if r["power_w"] < DISCHARGING_BELOW_W),
        fail_safe=sum(1 for r in live if r["fail_safe"]),
        net_power_w=sum(r["power_w"] for r in live),
        gateways=rows,
    )


def vpp_profiles_left(station_state_dir: Path, *, stack_level: int) -> list[dict[str, Any]]:
    """Profiles at ``stack_level`` in a station's own profile store (read-only), as the
    station stored them (snake_case wire). Read through the station's store code, so the
    keys cannot drift from what it writes (they once did: ``stackLevel`` was looked for
    where the station stores ``stack_level``, and this always answered ``[]``)."""
    return [
        dict(stored.wire)
        for stored in read_installed_profiles(station_state_dir)
        if stored.profile.stack_level == stack_level
    ]


class _OwnSessionBroker(MosquittoBroker):
    """The broker in its own session: a terminal's Ctrl-C reaches the demo only, which then
    cancels the dispatch while the broker, the core and the fleet are still up."""

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True
            )
        try:
            wait_port("127.0.0.1", self.port, timeout_s=10)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None


class DemoStack:
    """``async with DemoStack(state_dir, settings) as stack``: everything running; leaving
    stops the fleet (ramp to 0 W, contactors open), then the core, then the broker."""

    def __init__(self, state_dir: Path, settings: StackSettings) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self.token = secrets.token_urlsafe(24)
        self.csms_port = free_port()
        self.api_port = free_port()
        self.hosts: list[FleetHostProcess] = []
        self.core: asyncio.subprocess.Process | None = None
        self.broker: MosquittoBroker | None = None
        self.pki: PkiLayout | None = None
        self.core_config = state_dir / "core.toml"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def api(self, *, timeout_s: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout_s,
        )

    # --- life cycle ----------------------------------------------------------------------
    async def __aenter__(self) -> DemoStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ids = self.settings.station_ids
        self.pki = await asyncio.to_thread(
            provision, self.state_dir / "pki", clients=_missing(self.state_dir, [*ids, "core"])
        )
        self._start_broker()
        await self._register(ids)
        await self.start_core()
        await self._start_hosts(ids)

    async def stop(self) -> None:
        """Fleet first (every gateway ramps to 0 W and opens its contactor), then core, broker."""
        await asyncio.gather(*(_terminate(h.proc, timeout_s=20.0) for h in self.hosts))
        await _terminate(self.core, timeout_s=15.0)
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)

    # --- broker, core --------------------------------------------------------------------
    def _start_broker(self) -> None:
        assert self.pki is not None
        acl = f"acl_file {PRODUCTION_ACL}" if PRODUCTION_ACL.exists() else ""
        workdir = self.state_dir / "broker"
        workdir.mkdir(exist_ok=True)
        self.broker = _OwnSessionBroker(workdir, self.pki, extra_conf=acl)
        self.broker.start()

    def _write_core_config(self) -> None:
        assert self.pki is not None
        assert self.broker is not None
        token_file = self.state_dir / "api-token"
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        self.core_config.write_text(
            core_toml(
                self.settings,
                pki=self.pki,
                state_dir=self.state_dir,
                csms_port=self.csms_port,
                api_port=self.api_port,
                broker_port=self.broker.port,
                token_file=token_file,
            )
        )

    async def _register(self, ids: list[str]) -> None:
        store = await FleetStore.open(self.database_url)
        try:
            registry = StationRegistry(store)
            known = {e.station_id for e in await registry.list()}
            now = datetime.now(UTC)
            for sid in ids:
                if sid not in known:
                    await registry.add(
                        sid, security_profile=3, site=sid, region=REGION, password=None, now=now
                    )
        finally:
            await store.close()

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.state_dir / 'fleet.db'}"

    async def start_core(self) -> None:
        """``vpp-core run`` as a child (its core.toml written from ``settings``, which a
        test may replace between runs); returns once its HTTP API answers."""
        self._write_core_config()
        log = (self.state_dir / "core.log").open("ab")
        self.core = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vpp_core.app",
            "--log-level",
            self.settings.log_level,
            "--config",
            str(self.core_config),
            "run",
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C goes to the demo, which stops things in order
        )
        log.close()
        await self._wait_api(timeout_s=30.0)

    async def _wait_api(self, *, timeout_s: float) -> None:
        async with self.api(timeout_s=1.0) as client, asyncio.timeout(timeout_s):
            while True:
                if self.core is not None and self.core.returncode is not None:
                    tail = (self.state_dir / "core.log").read_text()[-3000:]
                    raise RuntimeError(f"vpp-core exited ({self.core.returncode}):\n{tail}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/fleet")).status_code == 200:
                        return
                await asyncio.sleep(0.2)

    def kill_core(self) -> None:
        """``kill -9`` the core (the fault the e2e test injects)."""
        assert self.core is not None
        self.core.send_signal(signal.SIGKILL)

    async def wait_core_exit(self) -> int:
        assert self.core is not None
        return await self.core.wait()

    # --- the fleet -----------------------------------------------------------------------
    async def _start_hosts(self, ids: list[str]) -> None:
        per_host = max(1, min(self.settings.per_host, 247))
        for index in range(math.ceil(len(ids) / per_host)):
            chunk = ids[index * per_host : (index + 1) * per_host]
            host = FleetHostProcess(
                index=index,
                socket=self.state_dir / f"sim-{index}.sock",
                status_file=self.state_dir / f"fleet-host-{index}.json",
                device_ids={sid: i + 1 for i, sid in enumerate(chunk)},
            )
            configs = [self._write_gateway_config(host, sid) for sid in chunk]
            host.proc = await self._spawn_host(host, configs)
            self.hosts.append(host)
        await asyncio.gather(*(self._wait_host(h) for h in self.hosts))

    def _write_gateway_config(self, host: FleetHostProcess, station_id: str) -> Path:
        assert self.pki is not None
        assert self.broker is not None
        gw_dir = self.state_dir / "gateways" / station_id
        gw_dir.mkdir(parents=True, exist_ok=True)
        path = gw_dir / "gateway.toml"
        path.write_text(
            gateway_toml(
                self.settings,
                pki=self.pki,
                station_id=station_id,
                region=REGION,
                csms_url=f"wss://127.0.0.1:{self.csms_port}/ocpp",
                broker_port=self.broker.port,
                sim_socket=host.socket,
                device_id=host.device_ids[station_id],
                state_dir=gw_dir,
            )
        )
        return path

    async def _spawn_host(
        self, host: FleetHostProcess, configs: list[Path]
    ) -> asyncio.subprocess.Process:
        log = (self.state_dir / f"fleet-host-{host.index}.log").open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "v2g_sim.fleet_host",
                "--socket",
                str(host.socket),
                "--status-file",
                str(host.status_file),
                "--log-level",
                self.settings.log_level,
                *map(str, configs),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

    async def _wait_host(self, host: FleetHostProcess) -> None:
        async with asyncio.timeout(60.0):
            while not host.status_file.exists():
                if host.proc is not None and host.proc.returncode is not None:
                    log = self.state_dir / f"fleet-host-{host.index}.log"
                    raise RuntimeError(f"fleet host exited:\n{log.read_text()[-3000:]}")
                await asyncio.sleep(0.2)

    def observe(self) -> FleetObservation:
        return observe_hosts(self.hosts)

    def station_state_dir(self, station_id: str) -> Path:
        return self.state_dir / "gateways" / station_id

    def host_of(self, station_id: str) -> FleetHostProcess:
        for host in self.hosts:
            if station_id in host.device_ids:
                return host
        raise KeyError(station_id)

    async def plug_in(self, station_id: str, ev: EvSpec) -> None:
        host = self.host_of(station_id)
        ev_args = {k: getattr(ev, k) for k in ev.__dataclass_fields__}
        await asyncio.to_thread(
            _sim_request, host, "plug-in", device_id=host.device_ids[station_id], ev=ev_args
        )

    async def step_grid(self, freq_hz: float) -> None:
        """Every site's grid frequency steps to ``freq_hz`` now (no noise), on every host."""
        for host in self.hosts:
            await asyncio.to_thread(_sim_request, host, "grid", freq_hz=freq_hz, noise_hz=0.0)

    async def plug_out(self, station_id: str) -> None:
        host = self.host_of(station_id)
        await asyncio.to_thread(
            _sim_request, host, "plug-out", device_id=host.device_ids[station_id]
        )


def _sim_request(host: FleetHostProcess, cmd: str, **args: object) -> None:
    with host.sim() as client:
        client.request(cmd, **args)


def _missing(state_dir: Path, ids: list[str]) -> list[str]:
    """Client certificates not yet issued (a re-used state directory keeps its PKI)."""
    layout = PkiLayout(state_dir / "pki")
    return [i for i in ids if not layout.client_cert(i).exists()]


async def _terminate(proc: asyncio.subprocess.Process | None, *, timeout_s: float) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout_s):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
