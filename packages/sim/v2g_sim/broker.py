"""A local mosquitto with a TLS listener that demands client certificates, run as a child
process: the demo's embedded broker and the tests' real broker."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from v2g_common.pki import PkiLayout

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, *, timeout_s: float) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s} s"
                ) from None
            time.sleep(0.02)


class MosquittoBroker:
    """One mosquitto process on a free loopback port, TLS with client certificates required.

    ``extra_conf`` lines are appended (e.g. ``acl_file``); ``restart()`` keeps the port so
    clients can reconnect, which the outage tests rely on.
    """

    def __init__(
        self, workdir: Path, pki: PkiLayout, *, extra_conf: str = "", port: int | None = None
    ) -> None:
        self.workdir = workdir
        self.pki = pki
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    def config_text(self) -> str:
        user = pwd.getpwuid(os.getuid()).pw_name
        return "\n".join(
            [
                f"listener {self.port} 127.0.0.1",
                f"cafile {self.pki.ca_cert}",
                f"certfile {self.pki.server_cert('broker')}",
                f"keyfile {self.pki.server_key('broker')}",
                "tls_version tlsv1.2",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
                "persistence false",
                f"user {user}",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                self.extra_conf,
                "",
            ]
        )

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_port("127.0.0.1", self.port, timeout_s=10)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
