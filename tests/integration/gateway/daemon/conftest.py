"""Fixtures for the daemon's end-to-end tests: a real ``v2g-sim`` serving the SunSpec map on
a pty, and the real ``v2g-gateway`` daemon driving it (control process included).

The daemon runs on ``$V2G_GATEWAY_PYTHON`` when set (a gateway-only install, see
tests/integration/gateway/test_gateway_only_install.py), else on this interpreter; the
simulator always runs here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    daemon_starter,
    running_sim,
)


@pytest.fixture
def v2g_sim(tmp_path: Path) -> Iterator[RunningSim]:
    with running_sim(tmp_path / "sim.sock") as sim:
        yield sim


@pytest.fixture
def start_daemon(tmp_path: Path, v2g_sim: RunningSim) -> Iterator[Callable[..., RunningDaemon]]:
    with daemon_starter(tmp_path, v2g_sim) as start:
        yield start
