"""A v2g-sim bench around the gateway container: the unit as systemd sees it, the simulated
charger as the simulator sees it, and the journal in between."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.doubles.waiting import wait_for
from tests.integration.gateway.daemon.daemon_harness import RunningSim
from tests.support.nspawn import BootedContainer
from tests.system.deploy import bench_gateway_config, write_config

__all__ = ["UNIT", "GatewayBench"]

UNIT = "v2g-gateway.service"
CONFIG = "/etc/v2g-gateway/gateway.toml"
_DROP_INS = "etc/systemd/system/v2g-gateway.service.d"
_STATE = ("ActiveState", "SubState", "MainPID", "NRestarts", "Result", "StatusText")


@dataclass
class GatewayBench:
    container: BootedContainer
    root: Path  # the container's root as the host sees it (the overlay)
    sim: RunningSim

    # --- the unit ------------------------------------------------------------------------
    def state(self, *extra: str) -> dict[str, str]:
        return self.container.show(UNIT, *_STATE, *extra)

    def wait_state(self, active: str, sub: str, *, timeout_s: float) -> dict[str, str]:
        def reached() -> dict[str, str] | None:
            state = self.state()
            return state if (state["ActiveState"], state["SubState"]) == (active, sub) else None

        return wait_for(reached, timeout_s=timeout_s, what=f"{UNIT} {active} ({sub})")

    def main_pid(self) -> int:
        return int(self.state()["MainPID"])

    def control_pid(self) -> int:
        """The control process: the unit's other process (container PID)."""
        cgroup = self.container.show(UNIT, "ControlGroup")["ControlGroup"]
        procs = self.container.run("cat", f"/sys/fs/cgroup{cgroup}/cgroup.procs").stdout.split()
        others = [int(pid) for pid in procs if int(pid) != self.main_pid()]
        assert len(others) == 1, f"expected one control process, cgroup has {procs}"
        return others[0]

    def configure(self, **sections: dict[str, Any]) -> None:
        write_config(self.root, CONFIG, bench_gateway_config(**sections), group="v2g-gateway")

    def drop_in(self, name: str, text: str) -> None:
        path = self.root / _DROP_INS / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.container.systemctl("daemon-reload")

    def reset(self) -> None:
        """Unit stopped, failure state cleared, no drop-ins, the bench configuration, and the
        simulated charger plugged in without faults or a pending stall."""
        self.container.systemctl("stop", UNIT, check=False)
        self.container.systemctl("reset-failed", UNIT, check=False)
        drop_ins = self.root / _DROP_INS
        for path in drop_ins.glob("*.conf"):
            path.unlink()
        self.container.systemctl("daemon-reload")
        self.configure()
        self.sim.request("clear")
        if not self.sim.status()["ev_connected"]:
            self.sim.request("plug-in")

    def start_running(self, *, timeout_s: float = 60.0) -> dict[str, str]:
        self.container.systemctl("start", UNIT)
        return self.wait_state("active", "running", timeout_s=timeout_s)

    def wait_discharging(self, *, power_w: float = -3000.0, timeout_s: float = 30.0) -> None:
        """The simulated module delivers the local lease's power (within 5 %)."""
        wait_for(
            lambda: abs(self.sim.status()["power_w"] - power_w) < abs(power_w) * 0.05,
            timeout_s=timeout_s,
            what=f"the module at {power_w} W",
        )

    # --- the journal ---------------------------------------------------------------------
    def journal(self, *matches: str, since_us: int = 0) -> list[dict[str, Any]]:
        """This unit's entries (its processes' and systemd's about it) logged after
        ``since_us`` (CLOCK_MONOTONIC, see :func:`monotonic_us`), oldest first."""
        return [
            entry
            for entry in self.container.journal(*matches, unit=UNIT)
            if int(entry["__MONOTONIC_TIMESTAMP"]) > since_us
        ]

    def journal_lines(self, *, since_us: int = 0) -> list[str]:
        return [
            f"{e.get('SYSLOG_IDENTIFIER', '?')}[{e.get('_PID', '')}]: {e.get('MESSAGE', '')}"
            for e in self.journal(since_us=since_us)
        ]

    def wait_message(self, text: str, *, since_us: int, timeout_s: float) -> dict[str, Any]:
        """The first entry after ``since_us`` whose message contains ``text``."""

        def found() -> dict[str, Any] | None:
            hits = [e for e in self.journal(since_us=since_us) if text in str(e.get("MESSAGE"))]
            return hits[0] if hits else None

        return wait_for(found, timeout_s=timeout_s, what=f"{text!r} in the journal")


def monotonic_us() -> int:
    """Now on CLOCK_MONOTONIC in µs: the clock of journald's ``__MONOTONIC_TIMESTAMP`` and of
    systemd's ``*TimestampMonotonic`` (the container shares the host's kernel clock)."""
    return time.monotonic_ns() // 1000
