"""``GatewayConfig``: every section of ``etc/gateway.toml``, composed from the subsystems'
own section models (each declared next to its code)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gateway.common.config import ConfigSection, load_config
from gateway.edge.contactor import ContactorSection, SimulatorSection
from gateway.edge.control.config import ControlSection
from gateway.edge.hw.config import PowerModuleSection, PowerSensorSection
from gateway.edge.local_lease import LocalLeaseSection

__all__ = [
    "ControlProcessConfig",
    "DaemonSection",
    "GatewayConfig",
    "PowerSensorConfig",
    "load_gateway_config",
]


class DaemonSection(ConfigSection):
    """``[daemon]``: process supervision, logging and the test hooks."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    startup_timeout_s: float = Field(default=30.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)
    loop_stall_timeout_s: float = Field(default=1.0, gt=0)
    status_every_s: float = Field(default=10.0, gt=0)
    test_hooks: bool = False
    test_stall_s: float = Field(default=30.0, gt=0)


class PowerSensorConfig(PowerSensorSection):
    """The hardware layer's ``[power_sensor]`` keys plus which sensor: ``ina228`` on a real
    i2c bus, or ``simulated`` (the INA228 model inside v2g-sim, see ``[simulator]``)."""

    kind: Literal["ina228", "simulated"] = "ina228"


class ControlProcessConfig(ConfigSection):
    """What the control process is started with (no station/uplink secrets on its stdin)."""

    control: ControlSection = ControlSection()
    power_module: PowerModuleSection = PowerModuleSection()
    power_sensor: PowerSensorConfig = PowerSensorConfig()
    contactor: ContactorSection = ContactorSection()
    simulator: SimulatorSection = SimulatorSection()
    log_level: str = "INFO"
    startup_timeout_s: float = 30.0


class GatewayConfig(ConfigSection):
    """The whole of ``etc/gateway.toml``. The station (``[station]``) and uplink
    (``[uplink]``) sections join here when those services land."""

    daemon: DaemonSection = DaemonSection()
    control: ControlSection = ControlSection()
    power_module: PowerModuleSection = PowerModuleSection()
    power_sensor: PowerSensorConfig = PowerSensorConfig()
    contactor: ContactorSection = ContactorSection()
    simulator: SimulatorSection = SimulatorSection()
    local_lease: LocalLeaseSection = LocalLeaseSection()

    def control_process(self) -> ControlProcessConfig:
        return ControlProcessConfig(
            control=self.control,
            power_module=self.power_module,
            power_sensor=self.power_sensor,
            contactor=self.contactor,
            simulator=self.simulator,
            log_level=self.daemon.log_level,
            startup_timeout_s=self.daemon.startup_timeout_s,
        )


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Read and validate ``path``; raises ``gateway.common.config.ConfigError``."""
    return load_config(GatewayConfig, path)
