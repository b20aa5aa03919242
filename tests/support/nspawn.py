"""A Debian root filesystem booted by ``systemd-nspawn``, driven from the host.

The container runs with ``--register=no --keep-unit -b`` (the host's PID 1 need not be
systemd), on the unified cgroup hierarchy and with the ``bpf`` system call allowed: systemd
enforces ``DevicePolicy=``/``DeviceAllow=`` with cgroup BPF programs, which nspawn's default
seccomp filter and a hybrid cgroup set-up would otherwise silently disable. The host's
network is shared (a service listening inside is reachable on 127.0.0.1).

Commands run inside through ``nsenter`` into the namespaces of the container's PID 1: the
container's own ``systemctl`` and ``journalctl`` talk to its systemd and journald, so every
assertion reads what systemd itself reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.doubles.waiting import wait_for

__all__ = ["Bind", "BootedContainer", "boot"]

_CONTAINER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_PAGER": "",
    "TERM": "dumb",
}


@dataclass(frozen=True)
class Bind:
    """A host path (file, device node, directory) seen at ``target`` inside the container."""

    source: Path
    target: str
    read_only: bool = False

    def option(self) -> str:
        flag = "--bind-ro" if self.read_only else "--bind"
        return f"{flag}={self.source}:{self.target}"


class BootedContainer:
    """A running container; build with :func:`boot`."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], console: Path) -> None:
        self.name = name
        self.process = process
        self.console = console
        self.leader = wait_for(self._find_leader, timeout_s=30, what=f"{name}'s PID 1")

    def _find_leader(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited: {self.console.read_text()[-2000:]}")
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                if _namespace_pids(child.pid)[-1:] == [1]:
                    return child.pid
        return None

    # --- commands inside -----------------------------------------------------------------
    def run(
        self, *argv: str, check: bool = True, timeout_s: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the container as its root, with a clean environment."""
        env = [f"{k}={v}" for k, v in _CONTAINER_ENV.items()]
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", *env, *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def systemctl(self, *args: str, check: bool = True) -> str:
        return self.run("systemctl", *args, check=check).stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict (every value a string, as systemd prints it)."""
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *matches: str, unit: str | None = None) -> list[dict[str, Any]]:
        """Entries as journald stores them (``journalctl -o json``), oldest first."""
        args = ["journalctl", "--no-pager", "-o", "json"]
        if unit is not None:
            args += ["-u", unit]
        out = self.run(*args, *matches).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def host_path(self, path: str) -> Path:
        """Where a path of the container's file system is seen from the host."""
        return Path(f"/proc/{self.leader}/root") / path.lstrip("/")

    # --- life cycle ----------------------------------------------------------------------
    def wait_booted(self, *, timeout_s: float = 60.0) -> str:
        def state() -> str | None:
            result = self.run("systemctl", "is-system-running", check=False, timeout_s=10)
            value = result.stdout.strip()
            return value if value in ("running", "degraded") else None

        return wait_for(state, timeout_s=timeout_s, what=f"{self.name} to finish booting")

    def poweroff(self, *, timeout_s: float = 30.0) -> int:
        """SIGTERM makes nspawn ask the container's systemd to power off; SIGKILL after."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)


def _namespace_pids(pid: int) -> list[int]:
    """The ``NSpid`` chain of ``pid`` (host pid first, innermost last)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return [int(field) for field in line.split()[1:]]
    return []


@contextlib.contextmanager
def boot(
    root: Path,
    *,
    name: str,
    binds: Sequence[Bind] = (),
    console: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[BootedContainer]:
    """Boot ``root`` (``systemd-nspawn -b``) and power it off afterwards."""
    argv = [
        "systemd-nspawn",
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={root}",
        f"--machine={name}",
        "--console=read-only",
        "--system-call-filter=bpf",
        # what a real host's PID 1 has: mlockall()/LimitMEMLOCK for the services
        "--capability=CAP_IPC_LOCK",
        *(bind.option() for bind in binds),
    ]
    env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1", **(extra_env or {})}
    with console.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    container: BootedContainer | None = None
    try:
        container = BootedContainer(name, process, console)
        container.wait_booted()
        yield container
    finally:
        if container is not None:
            container.poweroff()
        elif process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
