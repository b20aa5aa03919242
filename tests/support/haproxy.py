"""HAProxy of the test's own, running the shipped ``etc/haproxy/vpp-csms.cfg`` with the test's
listen port and CSMS nodes in place of the example ones (free loopback ports; never the
machine's own haproxy)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from v2g_sim.broker import free_port, wait_port

__all__ = ["HaproxyProcess", "haproxy_config"]

SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "haproxy" / "vpp-csms.cfg"


def haproxy_config(listen_port: int, nodes: Sequence[tuple[str, int, int]]) -> str:
    """The shipped config: ``bind`` on ``listen_port``, one ``server`` per (name, OCPP port,
    health port) on loopback, ``maxconn`` within a test's file limit; the rest as shipped."""
    text = SHIPPED.read_text()
    text = re.sub(r"(?m)^    bind :\d+$", f"    bind 127.0.0.1:{listen_port}", text)
    text = re.sub(r"(?m)^    maxconn \d+$", "    maxconn 4000", text)  # a test's FD limit
    text = re.sub(r"(?m)^    server .*\n", "", text)
    servers = "".join(
        f"    server {name} 127.0.0.1:{port} check port {health}\n" for name, port, health in nodes
    )
    return text.rstrip("\n") + "\n" + servers


class HaproxyProcess:
    def __init__(self, work: Path, nodes: Sequence[tuple[str, int, int]]) -> None:
        self.work = work
        self.port = free_port()
        self.nodes = list(nodes)
        self.config = work / "haproxy.cfg"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy is not installed (scripts/setup installs it)")
        self.work.mkdir(parents=True, exist_ok=True)
        self.config.write_text(haproxy_config(self.port, self.nodes))
        with (self.work / "haproxy.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port("127.0.0.1", self.port, timeout_s=10)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
