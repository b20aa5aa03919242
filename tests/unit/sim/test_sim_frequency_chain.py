"""The whole edge chain for frequency response, without a serial line: the site's grid
frequency steps in the simulator, the module publishes it in its SunSpec 701 Hz point, the
real SunSpec driver reads it, and the real control loop moves the module along the curve."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tests.unit.gateway.hw.test_hw_power_module_driver import ImageLink
from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.hw.power_module import SunSpecPowerModule
from v2g_sim.charger import SimContactor
from v2g_sim.ev import EvSpec
from v2g_sim.grid_frequency import GridFrequency
from v2g_sim.inprocess import AsyncSleeper
from v2g_sim.modbus_server import RealTimeStepper
from v2g_sim.module import ModuleSpec, PowerModuleModel
from v2g_sim.sunspec_image import SunSpecImage

CURVE = FreqWattCurve.from_points([(49.5, -6000.0), (49.9, 0.0), (50.1, 0.0), (50.5, 6000.0)])


class ModelSensor:
    def __init__(self, model: PowerModuleModel) -> None:
        self.model = model

    def read_power_w(self) -> float:
        return self.model.power_w


async def test_a_frequency_step_at_the_simulator_moves_the_module_along_the_curve() -> None:
    model = PowerModuleModel(spec=ModuleSpec(lag_tau_s=0.05, ramp_w_per_s=100000.0))
    model.grid = GridFrequency()
    model.plug_in(EvSpec(soc_pct=60.0))
    link: Any = ImageLink(SunSpecImage(model))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    loop = ControlLoop(
        stage=SunSpecPowerModule(link),
        sensor=ModelSensor(model),
        contactor=SimContactor(model),
        sock=b,
        settings=ControlSection(period_s=0.05),
        sleeper=AsyncSleeper(),
    )
    async with ControlChannel(a) as channel, asyncio.TaskGroup() as group:
        stepper = group.create_task(RealTimeStepper([model], tick_s=0.01).run())
        task = group.create_task(loop.run())
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=11000.0)
        channel.mark_csms_contact()
        channel.grant_lease(SetpointLease(0.0, 30.0, CURVE))
        await channel.wait_snapshot(lambda s: s.contactor_closed, timeout_s=5)
        model.grid = model.grid.step(at_s=model.now_s, to_hz=49.7)
        snap = await channel.wait_snapshot(lambda s: s.grid_freq_hz == 49.7, timeout_s=5)
        snap = await channel.wait_snapshot(lambda s: s.commanded_w < -2999.0, timeout_s=5)
        assert snap.commanded_w == pytest.approx(-3000.0)
        await channel.wait_snapshot(lambda s: abs(s.power_w + 3000.0) < 60.0, timeout_s=5)
        model.grid = model.grid.step(at_s=model.now_s, to_hz=50.05)  # into the dead-band
        await channel.wait_snapshot(lambda s: s.commanded_w == 0.0, timeout_s=5)
        channel.request_stop()
        await asyncio.wait_for(task, timeout=10)
        stepper.cancel()
