"""In-process devices over a :class:`~v2g_sim.charger.SimulatedCharger`, for running many
gateways in one process (``v2g_sim.fleet_host``).

The real daemon reaches the simulated module over Modbus RTU on a pty; fifty of those, each
polled at 10 Hz, do not fit two CPU cores. Here the control loop talks to the same physical
model through the :class:`~v2g_gateway.control.ports.PowerStage` interface directly, the
independent power sensor is the real INA228 driver over the simulator's in-memory i2c bus,
and the contactor is the simulator's relay. The Modbus path stays covered by the hardware
and daemon integration tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from v2g_gateway.control.ports import PowerStage, StageMeasurement, StageRatings
from v2g_gateway.hw.errors import HardwareError
from v2g_sim.module import PowerModuleModel

__all__ = ["AsyncSleeper", "ModelPowerStage", "ModuleCommsDown"]

#: Simulator fault names -> the stable event codes the SunSpec driver reports.
_FAULT_CODES = {
    "ground_fault": "GROUND_FAULT",
    "over_temp": "OVER_TEMP",
    "dc_over_voltage": "DC_OVER_VOLTAGE",
    "ac_over_voltage": "AC_OVER_VOLTAGE",
    "ac_under_voltage": "AC_UNDER_VOLTAGE",
}


class ModuleCommsDown(HardwareError):
    """The simulated module's ``comms_timeout`` fault: it does not answer."""


class ModelPowerStage:
    """``PowerStage`` over a :class:`PowerModuleModel` (no bus in between)."""

    def __init__(self, model: PowerModuleModel) -> None:
        self._model = model

    def _check_comms(self) -> None:
        if self._model.comms_down:
            raise ModuleCommsDown("simulated module not answering (comms_timeout)")

    async def read_ratings(self) -> StageRatings:
        self._check_comms()
        spec = self._model.spec
        return StageRatings(spec.rated_charge_w, spec.rated_discharge_w)

    async def read_measurement(self) -> StageMeasurement:
        self._check_comms()
        m = self._model
        return StageMeasurement(
            power_w=m.power_w,
            soc_pct=m.soc_pct,
            grid_freq_hz=m.grid_freq_hz,
            grid_voltage_v=m.grid_voltage_v,
            ev_connected=m.ev is not None,
            energy_import_wh=m.energy_absorbed_wh,
            energy_export_wh=m.energy_injected_wh,
            faults=frozenset(_FAULT_CODES[f] for f in m.faults if f in _FAULT_CODES),
        )

    async def write_setpoint(self, power_w: float) -> None:
        self._check_comms()
        self._model.command_setpoint(power_w)

    async def set_energized(self, energized: bool) -> None:
        self._check_comms()
        self._model.energized = energized

    async def program_revert(self, *, timeout_s: float, revert_power_w: float = 0.0) -> None:
        self._check_comms()
        self._model.program_revert(enabled=True, timeout_s=timeout_s, revert_power_w=revert_power_w)


class AsyncSleeper:
    """The control loop's sleeper when many loops share one event loop: only ``asyncio``
    sleeps (the daemon's :class:`~v2g_gateway.control.realtime.PreciseSleeper` finishes each
    wait with a blocking ``clock_nanosleep``, which would stall every other gateway)."""

    async def wait_until(self, deadline_s: float) -> None:
        remaining = deadline_s - time.monotonic()
        await asyncio.sleep(max(0.0, remaining))

    def block_until(self, deadline_s: float) -> None:
        """The stall test hook: blocks the whole host (as it blocks a real control process)."""
        remaining = deadline_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


if TYPE_CHECKING:
    _stage: type[PowerStage] = ModelPowerStage
