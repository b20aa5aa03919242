"""ModelPowerStage: the control loop's PowerStage over the simulator's module model."""

from __future__ import annotations

import pytest

from v2g_gateway.hw.errors import HardwareError
from v2g_sim.ev import EvSpec
from v2g_sim.inprocess import ModelPowerStage
from v2g_sim.module import ModuleSpec, PowerModuleModel


async def test_setpoint_measurement_and_faults() -> None:
    model = PowerModuleModel(spec=ModuleSpec(rated_charge_w=7000.0, rated_discharge_w=6000.0))
    model.plug_in(EvSpec(soc_pct=60.0))
    stage = ModelPowerStage(model)
    ratings = await stage.read_ratings()
    assert (ratings.max_charge_w, ratings.max_discharge_w) == (7000.0, 6000.0)
    await stage.write_setpoint(-4000.0)
    model.step(10.0)
    m = await stage.read_measurement()
    assert m.power_w == pytest.approx(-4000.0, abs=25.0)
    assert m.ev_connected
    assert m.soc_pct is not None
    assert m.soc_pct < 60.0
    assert m.energy_export_wh > 0
    assert m.faults == frozenset()
    model.inject_fault("ground_fault")
    assert (await stage.read_measurement()).faults == {"GROUND_FAULT"}


async def test_revert_timer_and_comms_loss() -> None:
    model = PowerModuleModel()
    model.plug_in(EvSpec())
    stage = ModelPowerStage(model)
    await stage.program_revert(timeout_s=2.0)
    await stage.write_setpoint(-3000.0)
    model.step(3.0)  # no new setpoint for longer than the revert time
    assert model.setpoint_w == 0.0
    model.inject_fault("comms_timeout")
    with pytest.raises(HardwareError):
        await stage.read_measurement()
    with pytest.raises(HardwareError):
        await stage.write_setpoint(1000.0)
