"""``GatewayConfig``: every section of ``etc/gateway.toml``, composed from the subsystems'
own section models (each declared next to its code; the device sections and what the control
process is started with in :mod:`v2g_gateway.devices`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection, load_config
from v2g_gateway.contactor import ContactorSection
from v2g_gateway.control.config import ControlSection
from v2g_gateway.devices import (
    ControlProcessConfig,
    EvLinkSection,
    PowerSensorConfig,
    SimulatorSection,
)
from v2g_gateway.frequency_log_service import FrequencyLogSection
from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.local_lease import LocalLeaseSection
from v2g_gateway.station.config import StationConfig
from v2g_gateway.uplink.config import UplinkConfig

__all__ = [
    "ControlProcessConfig",
    "DaemonSection",
    "EvLinkSection",
    "GatewayConfig",
    "PowerSensorConfig",
    "SimulatorSection",
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


class GatewayConfig(ConfigSection):
    """The whole of ``etc/gateway.toml``. ``[station]`` (OCPP) and ``[uplink]`` (MQTT) are
    optional: a bench unit may run on ``[local_lease]`` alone."""

    daemon: DaemonSection = DaemonSection()
    control: ControlSection = ControlSection()
    power_module: PowerModuleSection = PowerModuleSection()
    power_sensor: PowerSensorConfig = PowerSensorConfig()
    contactor: ContactorSection = ContactorSection()
    simulator: SimulatorSection = SimulatorSection()
    local_lease: LocalLeaseSection = LocalLeaseSection()
    ev_link: EvLinkSection = EvLinkSection()
    frequency_log: FrequencyLogSection = FrequencyLogSection()
    station: StationConfig | None = None
    uplink: UplinkConfig | None = None

    @model_validator(mode="after")
    def _one_lease_source(self) -> GatewayConfig:
        if self.station is not None and self.local_lease.enabled:
            raise ValueError("[local_lease] enabled together with [station]: two lease sources")
        if self.station is not None:
            probe_s = self.station.contact_probe_interval_s
            timeout_s = self.control.comms_loss_timeout_s
            # the comms-loss ramp may start from half the timeout on (control/comms_loss.py)
            if probe_s >= timeout_s / 2:
                raise ValueError(
                    f"station.contact_probe_interval_s ({probe_s}) must be below half of "
                    f"control.comms_loss_timeout_s ({timeout_s}), or an idle link derates "
                    "the output before the fail-safe's ramp"
                )
        return self

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
    """Read and validate ``path``; raises ``v2g_common.config.ConfigError``."""
    return load_config(GatewayConfig, path)
