"""systemd/vpp-core.service under a real systemd: the fleet database migrated by
ExecStartPre= before the core starts, READY=1 once it serves OCPP, hardening that still lets
it read its certificates and write its database, a clean stop, and a configuration error that
is not restarted."""

from __future__ import annotations

import socket
import sqlite3
import ssl
from datetime import UTC, datetime

import pytest

from tests.conftest import TestPki
from tests.system.core.conftest import UNIT, CoreBench
from tests.system.unit import monotonic_us
from vpp_core.fleet.schema import MIGRATIONS

# the first test of a module also builds its container (and, cold, the cached root and wheels)
pytestmark = [pytest.mark.integration, pytest.mark.system, pytest.mark.timeout(900)]

DATABASE = "var/lib/vpp-core/fleet.db"


def _tls_handshake(port: int, pki: TestPki) -> str:
    """Mutual TLS to the CSMS port as a security-profile-3 station; the server's subject."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(*pki.client("CS-0001"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cert = tls.getpeercert()
    assert cert is not None
    return str(cert["subject"])


def test_migrates_the_database_before_ready_then_serves_and_stops_cleanly(
    core: CoreBench, pki: TestPki
) -> None:
    core.container.run("rm", "-f", f"/{DATABASE}")  # a fresh install: no database yet
    state = core.start_running()
    assert state["StatusText"] == f"serving OCPP on port {core.csms_port}"
    times = core.container.show(UNIT, "ExecMainStartTimestamp", "ActiveEnterTimestamp")
    started = _unix_s(core, times["ExecMainStartTimestamp"])
    ready = _unix_s(core, times["ActiveEnterTimestamp"])

    owner = core.container.run("stat", "-c", "%U", f"/{DATABASE}").stdout.strip()
    assert owner == "vpp-core"  # made by the service in its StateDirectory
    with sqlite3.connect(f"file:{core.root / DATABASE}?mode=ro", uri=True) as db:
        applied = dict(db.execute("SELECT version, applied_at FROM schema_version"))
    assert set(applied) == {version for version, _, _ in MIGRATIONS}
    for applied_at in applied.values():  # every migration ran between exec and READY=1
        moment = datetime.fromisoformat(applied_at).replace(tzinfo=UTC).timestamp()
        assert started - 1 <= moment <= ready, (started, applied_at, ready)

    assert "csms" in _tls_handshake(core.csms_port, pki)  # its key readable under hardening

    since_us = monotonic_us()
    core.container.systemctl("stop", UNIT)
    stopped = core.state("ExecMainStatus")
    assert (stopped["ActiveState"], stopped["Result"], stopped["ExecMainStatus"]) == (
        "inactive",
        "success",
        "0",
    )
    assert any("Deactivated successfully" in line for line in core.journal_lines(since_us=since_us))


def _unix_s(core: CoreBench, timestamp: str) -> float:
    """A timestamp as systemctl prints it, in seconds since the epoch (container's `date`)."""
    return float(core.container.run("date", "-d", timestamp, "+%s.%N").stdout)


def test_a_configuration_error_names_the_key_and_is_not_restarted(core: CoreBench) -> None:
    core.configure(fleet={"write_interval_s": -1.0})
    since_us = monotonic_us()
    result = core.container.run("systemctl", "start", UNIT, check=False)
    assert result.returncode != 0
    state = core.wait_state("failed", "failed", timeout_s=30)
    assert state["NRestarts"] == "0"
    lines = core.journal_lines(since_us=since_us)
    assert any("fleet.write_interval_s" in line for line in lines), lines
    assert not any("Scheduled restart job" in line for line in lines), lines
