"""sd_notify's datagram protocol, spoken to sockets this test owns."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from v2g_common.sdnotify import SystemdNotifier


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_ready_and_watchdog_reach_a_filesystem_socket(
    path_socket: tuple[str, socket.socket],
) -> None:
    path, sock = path_socket
    notifier = SystemdNotifier(path, use_library=False)
    assert notifier.ready("running")
    assert sock.recv(4096) == b"READY=1\nSTATUS=running"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_at_sign_means_the_abstract_namespace() -> None:
    name = f"sdnotify-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert SystemdNotifier("@" + name, use_library=False).stopping("bye")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=bye"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_our_pid() -> None:
    mine = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_interval_s == 2.0
    other = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_s is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert SystemdNotifier(str(tmp_path / "gone"), use_library=False).watchdog() is False
