"""Helpers of the daemon end-to-end tests (uniquely named so test modules can import it)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.doubles.waiting import wait_for
from v2g_sim.control import SimControlClient

__all__ = [
    "GATEWAY_PYTHON",
    "RunningDaemon",
    "RunningSim",
    "daemon_starter",
    "gateway_config",
    "running_sim",
    "to_toml",
    "wait_for",
]

#: A gateway-only install's interpreter when set (tests/integration/gateway/
#: test_gateway_only_install.py), else this one; the simulator always runs here.
GATEWAY_PYTHON = os.environ.get("V2G_GATEWAY_PYTHON") or sys.executable


@dataclass
class RunningSim:
    process: subprocess.Popen[str]
    tty: str
    socket: Path

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        with SimControlClient(self.socket) as client:
            return client.request(cmd, device_id=1, **args)

    def status(self) -> dict[str, Any]:
        return self.request("status")


@contextlib.contextmanager
def running_sim(sock: Path) -> Iterator[RunningSim]:
    """``v2g-sim serve --plug-in`` with its control socket at ``sock``, stopped afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "v2g_sim.cli", "serve", "--socket", str(sock), "--plug-in"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15.0)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("tty: "), f"v2g-sim did not start: {line!r}"
        wait_for(sock.exists, timeout_s=10.0, what="the simulator's control socket")
        yield RunningSim(process, line.split()[1], sock)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # inside a list: an inline table
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def to_toml(config: dict[str, dict[str, Any]], *, prefix: str = "") -> str:
    """Sections of scalars and lists; a dict inside a section becomes a sub-table."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{prefix}{section}]")
        tables = {key: value for key, value in values.items() if isinstance(value, dict)}
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k not in tables]
        if tables:
            lines.append(to_toml(tables, prefix=f"{prefix}{section}.").rstrip("\n"))
    return "\n".join(lines) + "\n"


def gateway_config(tmp_path: Path, sim: RunningSim, **sections: dict[str, Any]) -> Path:
    """A gateway.toml driving ``sim``: its Modbus map, its INA228 and its contactor."""
    config: dict[str, dict[str, Any]] = {
        "daemon": {"test_hooks": True, "stop_timeout_s": 15.0},
        "control": {"period_s": 0.1, "ramp_w_per_s": 3000.0, "revert_timeout_s": 2.0},
        "power_module": {"port": sim.tty, "parity": "N", "timeout_s": 0.3, "retries": 1},
        "power_sensor": {"kind": "simulated", "calibration_file": str(tmp_path / "cal.json")},
        "contactor": {"kind": "simulated"},
        "simulator": {"socket": str(sim.socket)},
        "local_lease": {
            "enabled": True,
            "power_w": -3000.0,
            "valid_for_s": 3.0,
            "renew_every_s": 0.5,
            "ev_max_discharge_w": 10000.0,
        },
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(config))
    return path


@dataclass
class RunningDaemon:
    process: subprocess.Popen[bytes]
    log_path: Path
    sim: RunningSim
    extra_pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def control_pid(self) -> int:
        children = psutil.Process(self.pid).children()
        assert len(children) == 1, children
        return children[0].pid

    def log(self) -> str:
        return self.log_path.read_text()

    def contactor_closed(self) -> bool:
        return bool(self.sim.status()["contactor_closed"])


@contextlib.contextmanager
def daemon_starter(tmp_path: Path, sim: RunningSim) -> Iterator[Callable[..., RunningDaemon]]:
    """``start(config, env=...)`` runs ``v2g-gateway`` on ``config``; every daemon started is
    killed (its whole process group) on exit."""
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
        daemon = RunningDaemon(process, log_path, sim)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            if daemon.process.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.process.wait(timeout=10)
            for pid in daemon.extra_pids:
                if psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)
