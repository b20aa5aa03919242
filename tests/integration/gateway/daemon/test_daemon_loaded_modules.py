"""What the running daemon and its control process load when their devices are the
simulator's (``kind = "simulated"``): the simulator's adapters and its control-socket client,
nothing else of it; no OCPP/MQTT in the control process, no device code in the supervisor,
nothing of the core or the certificate authority in either. The processes are observed
through tests/support/sysmodules (their ``sys.modules`` at a clean exit)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    gateway_config,
    wait_for,
)
from tests.support.loaded_modules import (
    CERTIFICATE_AUTHORITY,
    CORE,
    EDGE_DEVICES,
    PROTOCOLS,
    SIMULATOR,
    SIMULATOR_ADAPTERS,
    forbidden,
    probe_env,
    read_records,
)

pytestmark = pytest.mark.integration


def test_a_simulated_bench_loads_the_simulator_adapters_only(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    dumps = tmp_path / "modules"
    dumps.mkdir()
    daemon = start_daemon(gateway_config(tmp_path, v2g_sim), env=probe_env(dumps))
    wait_for(
        lambda: v2g_sim.status()["setpoint_w"] < 0, timeout_s=20.0, what="discharge at the lease"
    )
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    records = {("control" if "control_host" in " ".join(r.argv) else "daemon"): r
               for r in read_records(dumps)}  # fmt: skip
    assert set(records) == {"control", "daemon"}
    control, supervisor = records["control"], records["daemon"]
    assert control.loaded(["v2g_gateway.control.law", "v2g_sim.gateway_adapters"])
    assert set(control.loaded(["v2g_sim"])) == SIMULATOR_ADAPTERS
    assert forbidden(control, PROTOCOLS + CORE + CERTIFICATE_AUTHORITY) == []
    assert forbidden(supervisor, PROTOCOLS + EDGE_DEVICES + CORE + SIMULATOR) == []
