"""systemd's notify protocol (``sd_notify``): READY, STATUS, WATCHDOG, STOPPING.

Uses systemd-python's ``systemd.daemon.notify`` when installed, else speaks the protocol
itself: one datagram of ``KEY=value`` lines to the AF_UNIX socket in ``$NOTIFY_SOCKET``
(a leading ``@`` names an abstract socket). Without ``$NOTIFY_SOCKET`` every call is a no-op.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SystemdNotifier"]


def _systemd_notify() -> Callable[[str], Any] | None:
    try:
        daemon: Any = importlib.import_module("systemd.daemon")
    except ImportError:
        return None
    notify: Callable[[str], Any] = daemon.notify
    return notify


class SystemdNotifier:
    """Notify the service manager; build with :meth:`from_environment`."""

    def __init__(
        self,
        socket_path: str | None,
        *,
        watchdog_usec: int | None = None,
        use_library: bool = True,
    ) -> None:
        self.socket_path = socket_path
        self.watchdog_usec = watchdog_usec
        self._library = _systemd_notify() if use_library and socket_path else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC") and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"])
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half the configured WatchdogSec, or None."""
        return None if not self.watchdog_usec else self.watchdog_usec / 2e6

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines; False when not under systemd or the send failed."""
        if self.socket_path is None:
            return False
        message = "\n".join(assignments)
        if self._library is not None:
            return bool(self._library(message))
        return self._send(message.encode())

    def _send(self, data: bytes) -> bool:
        assert self.socket_path is not None
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(data, address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
