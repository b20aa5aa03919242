"""``vpp-core run`` as a real child process, for tests and benchmarks.

The core listens on free loopback ports: the CSMS over TLS (security profiles 2 and 3 on one
port), the grid-operator API with a bearer token, Prometheus /metrics; the fleet is a SQLite
file. Stations are registered in that file before the core starts. Everything the core logs
goes to ``core.log`` in the work directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from v2g_common.pki import PkiLayout
from v2g_sim.broker import free_port
from vpp_core.csms import CsmsConfig
from vpp_core.fleet import FleetStore, StationRegistry

__all__ = ["CoreProcess", "StationAccount", "stop_process"]


@dataclass(frozen=True)
class StationAccount:
    identity: str
    security_profile: int  # 2: Basic auth over TLS; 3: client certificate
    password: str | None = None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    if '"' in text or "\\" in text:
        raise ValueError(f"cannot quote {text!r} for TOML")
    return f'"{text}"'


def toml_text(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


async def stop_process(proc: asyncio.subprocess.Process | None, timeout_s: float) -> int | None:
    """SIGTERM, then wait (SIGKILL after ``timeout_s``); the exit status (None: never started)."""
    if proc is None or proc.returncode is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        proc.kill()
        return await proc.wait()


class CoreProcess:
    """``async with CoreProcess(work, pki, stations=...) as core:`` -- the core is serving."""

    def __init__(
        self,
        work: Path,
        pki: PkiLayout,
        *,
        stations: Sequence[StationAccount],
        log_level: str = "INFO",
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.work = work
        self.pki = pki
        self.stations = list(stations)
        self.log_level = log_level
        self.overrides = overrides or {}
        csms = self.overrides.get("csms", {})
        self.max_frame_bytes = int(csms.get("max_frame_bytes", CsmsConfig().max_frame_bytes))
        self.token = "tok-" + secrets.token_urlsafe(24)
        self.csms_port, self.api_port, self.metrics_port = free_port(), free_port(), free_port()
        self.db_path = work / "fleet.db"
        self.log_path = work / "core.log"
        self.config_path = work / "core.toml"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def csms_url(self) -> str:
        return f"wss://localhost:{self.csms_port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def config(self) -> dict[str, dict[str, Any]]:
        token_file = self.work / "api-token"
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        sections: dict[str, dict[str, Any]] = {
            "csms": {
                "host": "127.0.0.1",
                "port": self.csms_port,
                "tls_cert_file": self.pki.server_cert("csms"),
                "tls_key_file": self.pki.server_key("csms"),
                "tls_client_ca_file": self.pki.ca_cert,
                "ping_interval_s": 0.0,
            },
            "fleet": {"database_url": self.database_url},
            "metrics": {"host": "127.0.0.1", "port": self.metrics_port},
            "runtime": {"gc_freeze_after_start": False},
            "api": {"host": "127.0.0.1", "port": self.api_port, "bearer_token_file": token_file},
        }
        for name, values in self.overrides.items():
            sections.setdefault(name, {}).update(values)
        return sections

    async def __aenter__(self) -> CoreProcess:
        self.work.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(toml_text(self.config()))
        await self._register()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _register(self) -> None:
        store = await FleetStore.open(self.database_url)
        try:
            registry = StationRegistry(store)
            now = datetime.now(UTC)
            for s in self.stations:
                await registry.add(
                    s.identity,
                    security_profile=s.security_profile,
                    site=f"site-{s.identity}",
                    region="north",
                    password=s.password,
                    now=now,
                )
        finally:
            await store.close()

    async def start(self, *, timeout_s: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vpp_core.app",
                "--log-level",
                self.log_level,
                "--config",
                str(self.config_path),
                "run",
                stdout=log,
                stderr=log,
            )
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=1) as http:
            async with asyncio.timeout(timeout_s):
                while True:
                    if self.proc.returncode is not None:
                        raise RuntimeError(f"vpp-core exited:\n{self.log_text()[-3000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/api/v1/fleet")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)

    @property
    def returncode(self) -> int | None:
        assert self.proc is not None
        return self.proc.returncode

    async def stop(self, *, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout_s``); the exit status."""
        return await stop_process(self.proc, timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text

    async def table_count(self, table: str) -> int:
        """Rows of a fleet table, read through the core's own store (WAL: alongside it)."""
        store = await FleetStore.open(self.database_url)
        try:
            return await store.table_count(table)
        finally:
            await store.close()
