"""The daemon under systemd's notify protocol, with a NOTIFY_SOCKET this test owns: READY=1,
periodic WATCHDOG=1, and silence on the watchdog while the control loop is stalled (the
SIGUSR2 test hook, enabled by ``daemon.test_hooks``)."""

from __future__ import annotations

import itertools
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    gateway_config,
)

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 400_000  # WatchdogSec=0.4 s: the daemon pings every 0.2 s
STALL_S = 2.5
STALL_DETECT_S = 0.5  # daemon.loop_stall_timeout_s


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """An abstract-namespace datagram socket, named the way systemd passes it ('@...')."""
    name = f"v2g-notify-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.05)
    try:
        yield "@" + name, sock
    finally:
        sock.close()


def receive(
    sock: socket.socket, *, until: Callable[[list[tuple[float, str]]], bool], timeout_s: float
) -> list[tuple[float, str]]:
    """(arrival time, line) for every notification line until ``until`` holds."""
    rows: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout_s
    while not until(rows):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {[line for _, line in rows][-10:]}")
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        now = time.monotonic()
        rows.extend((now, line) for line in data.decode().splitlines())
    return rows


def watchdogs(rows: list[tuple[float, str]]) -> list[float]:
    return [t for t, line in rows if line == "WATCHDOG=1"]


def test_ready_then_periodic_watchdog_which_stops_while_the_loop_is_stalled(
    tmp_path: Path,
    v2g_sim: RunningSim,
    start_daemon: Callable[..., RunningDaemon],
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, sock = notify_socket
    config = gateway_config(
        tmp_path,
        v2g_sim,
        daemon={"test_stall_s": STALL_S, "loop_stall_timeout_s": STALL_DETECT_S},
    )
    daemon = start_daemon(
        config, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    )
    rows = receive(sock, until=lambda r: any(line == "READY=1" for _, line in r), timeout_s=20)
    assert any(line.startswith("STATUS=") for _, line in rows)
    rows = receive(sock, until=lambda r: len(watchdogs(r)) >= 6, timeout_s=5)
    gaps = [b - a for a, b in zip(watchdogs(rows), watchdogs(rows)[1:], strict=False)]
    assert max(gaps) < WATCHDOG_USEC / 1e6, f"watchdog not periodic: {gaps}"

    daemon.process.send_signal(signal.SIGUSR2)
    stalled_at = time.monotonic()
    rows = receive(
        sock,
        until=lambda r: any(t > stalled_at + STALL_S + 1.0 for t in watchdogs(r)),
        timeout_s=STALL_S + 10,
    )
    pings = [stalled_at, *watchdogs(rows)]
    silence = max(b - a for a, b in itertools.pairwise(pings))
    # fed until the loop has been silent for STALL_DETECT_S, then nothing until it reports
    assert silence > STALL_S - STALL_DETECT_S - 0.3, f"watchdog fed during the stall: {pings}"
    assert any(line == "STATUS=control loop stalled" for _, line in rows)

    daemon.process.send_signal(signal.SIGTERM)
    rows = receive(sock, until=lambda r: any(line == "STOPPING=1" for _, line in r), timeout_s=5)
    assert daemon.process.wait(timeout=15) == 0
    assert "CONTROL_LOOP_STALLED" in daemon.log()
