"""A v2g-sim bench around the gateway container: the unit as systemd sees it, the simulated
charger as the simulator sees it, and the journal in between."""

from __future__ import annotations

from dataclasses import dataclass

from tests.doubles.waiting import wait_for
from tests.integration.gateway.daemon.daemon_harness import RunningSim
from tests.system.deploy import bench_gateway_config, write_config
from tests.system.unit import ServiceUnit

__all__ = ["UNIT", "GatewayBench"]

UNIT = "v2g-gateway.service"
CONFIG = "/etc/v2g-gateway/gateway.toml"


@dataclass
class GatewayBench(ServiceUnit):
    sim: RunningSim

    def control_pid(self) -> int:
        """The control process: the unit's other process (container PID)."""
        cgroup = self.container.show(UNIT, "ControlGroup")["ControlGroup"]
        procs = self.container.run("cat", f"/sys/fs/cgroup{cgroup}/cgroup.procs").stdout.split()
        others = [int(pid) for pid in procs if int(pid) != self.main_pid()]
        assert len(others) == 1, f"expected one control process, cgroup has {procs}"
        return others[0]

    def configure(self, **sections: dict[str, object]) -> None:
        write_config(self.root, CONFIG, bench_gateway_config(**sections), group="v2g-gateway")

    def reset(self) -> None:
        """Unit stopped and without drop-ins, the bench configuration, and the simulated
        charger plugged in without faults."""
        self.reset_unit()
        self.configure()
        self.sim.request("clear")
        if not self.sim.status()["ev_connected"]:
            self.sim.request("plug-in")

    def wait_discharging(self, *, power_w: float = -3000.0, timeout_s: float = 30.0) -> None:
        """The simulated module delivers the local lease's power (within 5 %)."""
        wait_for(
            lambda: abs(self.sim.status()["power_w"] - power_w) < abs(power_w) * 0.05,
            timeout_s=timeout_s,
            what=f"the module at {power_w} W",
        )
