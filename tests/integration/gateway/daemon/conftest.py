"""Fixtures for the daemon's end-to-end tests: a real ``v2g-sim`` serving the SunSpec map on
a pty, and the real ``v2g-gateway`` daemon driving it (control process included).

The daemon runs on ``$V2G_GATEWAY_PYTHON`` when set (a gateway-only install, see
tests/integration/gateway/test_gateway_only_install.py), else on this interpreter; the
simulator always runs here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.gateway.daemon.daemon_harness import RunningDaemon, RunningSim, running_sim

GATEWAY_PYTHON = os.environ.get("V2G_GATEWAY_PYTHON") or sys.executable


@pytest.fixture
def v2g_sim(tmp_path: Path) -> Iterator[RunningSim]:
    with running_sim(tmp_path / "sim.sock") as sim:
        yield sim


@pytest.fixture
def start_daemon(tmp_path: Path, v2g_sim: RunningSim) -> Iterator[Callable[..., RunningDaemon]]:
    started: list[RunningDaemon] = []

    def start(config: Path, *, env: dict[str, str] | None = None) -> RunningDaemon:
        log_path = tmp_path / f"daemon-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [GATEWAY_PYTHON, "-m", "v2g_gateway.daemon", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group: killpg reaches both processes
            )
        daemon = RunningDaemon(process, log_path, v2g_sim)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.process.wait(timeout=10)
        for pid in daemon.extra_pids:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
