"""The SunSpec driver over an in-memory register link (the simulator's image): sign
conversion, scale-factor caching, fall-backs and refusals, without a serial line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from v2g_gateway.hw.errors import ModuleFaultError, PowerModuleError
from v2g_gateway.hw.power_module import SunSpecPowerModule, standard_register_map
from v2g_sim.ev import EvSpec
from v2g_sim.module import PowerModuleModel
from v2g_sim.sunspec_image import ScaleFactors, SunSpecImage


class ImageLink:
    """Stands in for RegisterLink: reads and writes the simulator's register image."""

    def __init__(self, image: SunSpecImage) -> None:
        self.image = image
        self.reads: list[tuple[int, int]] = []
        self.overrides: dict[int, int] = {}

    async def read(self, address: int, count: int) -> list[int]:
        self.reads.append((address, count))
        words = self.image.render()
        for addr, value in self.overrides.items():
            words[addr - self.image.base_address] = value
        start = address - self.image.base_address
        return words[start : start + count]

    async def write(self, address: int, values: Sequence[int]) -> None:
        self.image.apply_write(address, values)


def _driver(
    sf: ScaleFactors | None = None,
) -> tuple[SunSpecPowerModule, ImageLink, PowerModuleModel]:
    model = PowerModuleModel()
    model.plug_in(EvSpec(soc_pct=55.0))
    link = ImageLink(SunSpecImage(model, sf=sf or ScaleFactors()))
    link_any: Any = link
    return SunSpecPowerModule(link_any), link, model


async def test_sign_convention_is_converted_at_the_driver() -> None:
    module, _, model = _driver()
    await module.write_setpoint(-7000.0)  # discharge
    assert model.setpoint_w == -7000.0
    model.step(20.0)
    measured = await module.read_measurement()
    assert measured.power_w == pytest.approx(-7000.0, abs=1.0)
    assert measured.energy_export_wh > 0.0
    assert measured.energy_import_wh == 0.0


async def test_scale_factors_are_read_once_per_discovery() -> None:
    module, link, _ = _driver()
    await module.read_measurement()
    first = list(link.reads)
    link.reads.clear()
    await module.read_measurement()
    span_701 = [count for address, count in link.reads if address == 40070 + 4]
    assert span_701 == [23]  # InvSt .. TotWhAbs, no scale-factor block any more
    assert max(c for _, c in first) > 100  # the first read spans the scale factors
    await module.discover()
    link.reads.clear()
    await module.read_measurement()
    assert max(c for _, c in link.reads) > 100


async def test_phase_voltage_is_used_when_line_neutral_is_absent() -> None:
    module, link, model = _driver()
    link.overrides[link.image.addresses[701] + 16] = 0xFFFF  # LNV not implemented
    measured = await module.read_measurement()
    assert measured.grid_voltage_v == pytest.approx(model.grid_voltage_v, abs=0.1)


async def test_missing_essential_point_is_a_typed_error() -> None:
    module, link, _ = _driver()
    link.overrides[link.image.addresses[701] + 10] = 0x8000  # W not implemented
    with pytest.raises(PowerModuleError, match="701 W"):
        await module.read_measurement()


async def test_no_ev_means_no_soc() -> None:
    module, _, model = _driver()
    model.plug_out()
    measured = await module.read_measurement()
    assert measured.soc_pct is None
    assert not measured.ev_connected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_non_finite_setpoints_and_timers_are_refused(bad: float) -> None:
    module, _, model = _driver()
    with pytest.raises(ValueError, match="finite"):
        await module.write_setpoint(bad)
    with pytest.raises(ValueError, match="revert"):
        await module.program_revert(timeout_s=bad)
    assert model.setpoint_w == 0.0


async def test_fault_refuses_power_but_not_zero() -> None:
    module, _, model = _driver()
    model.inject_fault("ground_fault")
    with pytest.raises(ModuleFaultError) as err:
        await module.write_setpoint(3000.0)
    assert err.value.codes == frozenset({"GROUND_FAULT"})
    await module.write_setpoint(0.0)
    assert model.setpoint_w == 0.0


def test_standard_map_is_the_default() -> None:
    assert standard_register_map().power_sign == "injection_positive"


async def test_status_reports_connection_state_and_temperature() -> None:
    module, _, model = _driver()
    status = await module.read_status()
    assert status.grid_connected is True
    assert status.cabinet_temp_c == pytest.approx(model.spec.ambient_temp_c)
    model.inject_fault("over_temp")
    status = await module.read_status()
    assert status.grid_connected is False
    assert status.inverter_state == 6
    assert status.faults == frozenset({"OVER_TEMP"})
    assert status.cabinet_temp_c is not None
    assert status.cabinet_temp_c > model.spec.over_temp_c
