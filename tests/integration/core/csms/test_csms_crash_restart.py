"""kill -9 of a running ``vpp-core`` mid-session, then restart: the fleet comes back from the
write-behind database and agrees with what the stations report next.

What a kill -9 may lose (the bound this test holds the core to): changes not yet written —
at most ``fleet.write_interval_s`` of meter samples plus urgent changes of the last write in
flight. Sessions that were written (start, charging needs) survive; registers, power and SoC
are absolute, so the station's next report restores the exact live values.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.integration.core.csms.conftest import RawStation, boot_payload, needs_payload, tx_payload
from v2g_common.pki import client_context
from vpp_core.fleet import FleetStore, StationEntry, hash_password

pytestmark = pytest.mark.integration
PASSWORD = "crash-test-password-01"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


class CoreProcess:
    def __init__(self, tmp: Path, pki: Any, database_url: str) -> None:
        self.port, self.metrics_port = _free_port(), _free_port()
        cert, key = pki.server("csms")
        self.config = tmp / "core.toml"
        self.config.write_text(
            f"""
[csms]
host = "127.0.0.1"
port = {self.port}
tls_cert_file = "{cert}"
tls_key_file = "{key}"
tls_client_ca_file = "{pki.ca}"
ping_interval_s = 0
[fleet]
database_url = "{database_url}"
write_interval_s = 0.2
[metrics]
port = {self.metrics_port}
"""
        )
        self.ca = pki.ca
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vpp_core.app", "--config", str(self.config), *args],
            input=stdin.encode() if stdin else None,
            capture_output=True,
            timeout=60,
            check=True,
        )
        return done.stdout.decode()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vpp_core.app", "--config", str(self.config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def metric(self, name: str) -> float:
        """One sample from the Prometheus endpoint; ``name`` may carry labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    @asynccontextmanager
    async def station(self, identity: str) -> AsyncIterator[RawStation]:
        """Connect as a profile-2 station, retrying while the core starts."""
        import base64

        token = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
        async with asyncio.timeout(30):
            while True:
                try:
                    ws = await connect(
                        f"wss://localhost:{self.port}/ocpp/{identity}",
                        ssl=client_context(self.ca),
                        additional_headers={"Authorization": f"Basic {token}"},
                        subprotocols=["ocpp2.1"],  # type: ignore[list-item]
                        open_timeout=5,
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.1)
        try:
            yield RawStation(ws)
        finally:
            ws.transport.abort()


@pytest.fixture
def core(tmp_path: Path, pki: Any, fleet_db_url: str) -> Iterator[CoreProcess]:
    process = CoreProcess(tmp_path, pki, fleet_db_url)
    # one station through the operator's CLI, the others in bulk (same registry table)
    process.cli(
        "stations", "add", "CS-A", "--profile", "2", "--site", "s1", "--region", "r1",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    asyncio.run(_add_stations(fleet_db_url, ["CS-B", "CS-C"]))
    try:
        yield process
    finally:
        process.stop()


async def _add_stations(url: str, identities: list[str]) -> None:
    store = await FleetStore.open(url)
    try:
        hashed = hash_password(PASSWORD)
        entries = [StationEntry(i, 2, True, "s1", "r1", hashed) for i in identities]
        await store.add_stations(entries, now=datetime.now(UTC))
    finally:
        await store.close()


async def _written(url: str, station: str, tx: str, predicate: Any) -> dict[str, Any]:
    """Wait until the database holds a session row satisfying ``predicate``."""
    store = await FleetStore.open(url)
    try:
        async with asyncio.timeout(10):
            while True:
                row = await store.session_row(station, tx)
                if row is not None and predicate(row):
                    return row
                await asyncio.sleep(0.05)
    finally:
        await store.close()


async def _ok(station: RawStation, action: str, payload: dict[str, Any]) -> None:
    reply = await station.call(action, payload)
    assert reply[0] == 3, reply


async def test_kill9_mid_session_then_restart_restores_and_reconciles(
    core: CoreProcess, fleet_db_url: str
) -> None:
    core.start()
    async with core.station("CS-A") as a, core.station("CS-B") as b, core.station("CS-C") as c:
        for station in (a, b, c):
            await _ok(station, "BootNotification", boot_payload())
        await _ok(
            a,
            "TransactionEvent",
            tx_payload("Started", 0, _ts(0), tx="tx-A", import_wh=1000, soc=60),
        )
        await _ok(a, "NotifyEVChargingNeeds", needs_payload())
        await _ok(
            b, "TransactionEvent", tx_payload("Started", 0, _ts(0), tx="tx-B", import_wh=50, soc=30)
        )
        await _ok(
            b, "TransactionEvent", tx_payload("Ended", 1, _ts(5), tx="tx-B", import_wh=60, soc=31)
        )
        for i in range(1, 4):
            update = tx_payload(
                "Updated",
                i,
                _ts(10 * i),
                tx="tx-A",
                import_wh=1000,
                export_wh=500 + 100 * i,
                soc=60 - i,
            )
            await _ok(a, "TransactionEvent", update)
        # what has certainly been written (the timer writes within write_interval_s)
        await _written(
            fleet_db_url,
            "CS-A",
            "tx-A",
            lambda r: r["max_discharge_w"] == 10000 and r["energy_export_wh"] == 800,
        )
        # the last reports right before the crash may or may not make it to the database
        last = tx_payload("Updated", 4, _ts(40), tx="tx-A", import_wh=1000, export_wh=900, soc=56)
        await _ok(a, "TransactionEvent", last)
        await _ok(
            c, "TransactionEvent", tx_payload("Started", 0, _ts(40), tx="tx-C", import_wh=5, soc=80)
        )
        core.kill9()

    core.start()
    async with core.station("CS-A") as a, core.station("CS-C") as c:
        # restored before any station said anything new
        row = await _written(fleet_db_url, "CS-A", "tx-A", lambda r: True)
        assert row["active"]
        assert row["started_at"] == T0
        assert row["max_discharge_w"] == 10000
        assert row["ev_min_v2x_energy_wh"] == 20000
        assert row["target_soc_pct"] == 80
        assert row["departure"] == datetime(2026, 3, 1, 18, tzinfo=UTC)
        # within the bound: only what arrived in the last write interval may be missing
        assert row["energy_export_wh"] in (800, 900)
        assert row["soc_pct"] in (57, 56)
        ended = await _written(fleet_db_url, "CS-B", "tx-B", lambda r: True)
        assert not ended["active"]
        assert core.metric("vpp_fleet_sessions_active") in (1, 2)  # tx-C: written or lost
        # the stations' next reports reconcile the live state exactly
        after = tx_payload("Updated", 5, _ts(50), tx="tx-A", import_wh=1000, export_wh=1000, soc=55)
        await _ok(a, "TransactionEvent", after)
        await _ok(
            c, "TransactionEvent", tx_payload("Updated", 1, _ts(50), tx="tx-C", import_wh=7, soc=79)
        )
        row = await _written(fleet_db_url, "CS-A", "tx-A", lambda r: r["energy_export_wh"] == 1000)
        assert row["soc_pct"] == 55
        assert row["present_power_w"] == -7000
        assert row["max_discharge_w"] == 10000  # limits kept across the crash
        assert row["started_at"] == T0
        row_c = await _written(fleet_db_url, "CS-C", "tx-C", lambda r: r["energy_import_wh"] == 7)
        assert row_c["active"]
        assert core.metric("vpp_fleet_sessions_active") == 2
        assert core.metric("vpp_csms_connections") == 2
        handled = 'vpp_csms_handler_seconds_count{action="TransactionEvent"}'
        assert core.metric(handled) == 2
        assert core.metric('vpp_csms_messages_total{action="TransactionEvent"}') == 2
        assert 0 <= core.metric("vpp_fleet_db_write_lag_seconds") < 5
