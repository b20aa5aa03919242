"""One booted gateway container per test module: the gateway installed as a charger gets it,
v2g-sim on the host, its pty bound in as the RS-485 port (/dev/ttyRS485) and its control
socket's directory (the simulated i2c sensor, contactor and EV link) as /run/v2g-sim."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.daemon.daemon_harness import RunningSim, running_sim
from tests.support.nspawn import Bind, boot
from tests.support.rootfs import overlay
from tests.system.deploy import group_id, install_gateway
from tests.system.gateway.bench import UNIT, GatewayBench
from tests.system.unit import around_each_test


@pytest.fixture(scope="module")
def gateway_root(
    rootfs: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    with overlay(rootfs, tmp_path_factory.mktemp("gateway-root")) as root:
        install_gateway(root, wheelhouse=wheelhouse)
        yield root


@pytest.fixture(scope="module")
def bench_sim(gateway_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """v2g-sim on the host; its pty and socket made reachable for the service's groups the
    way docs/installing-gateway.md §5 says (a udev rule does it for a real adapter)."""
    sim_dir = tmp_path_factory.mktemp("sim")
    sim_dir.chmod(0o755)  # pytest makes it 0700; /run/v2g-sim must be traversable
    with running_sim(sim_dir / "sim.sock") as sim:
        os.chown(sim.tty, 0, group_id(gateway_root, "dialout"))
        os.chmod(sim.tty, 0o660)
        os.chown(sim.socket, 0, group_id(gateway_root, "v2g-gateway"))
        os.chmod(sim.socket, 0o660)
        yield sim


@pytest.fixture(scope="module")
def gateway_bench(
    gateway_root: Path, bench_sim: RunningSim, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayBench]:
    binds = [
        Bind(Path(bench_sim.tty), "/dev/ttyRS485"),
        Bind(bench_sim.socket.parent, "/run/v2g-sim"),
    ]
    console = tmp_path_factory.mktemp("console") / "gateway.log"
    with boot(gateway_root, name=f"v2g-gw-{os.getpid()}", binds=binds, console=console) as box:
        yield GatewayBench(box, gateway_root, UNIT, bench_sim)


@pytest.fixture
def gateway(gateway_bench: GatewayBench) -> Iterator[GatewayBench]:
    """The module's bench, reset before and after each test."""
    yield from around_each_test(gateway_bench)
