"""The SunSpec driver against the simulator over real tty devices (a pty pair)."""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from v2g_gateway.hw.errors import IllegalAddressError, ModelMissingError, ModuleFaultError
from v2g_gateway.hw.power_module import load_register_map
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime
from v2g_sim.sunspec_image import ScaleFactors

BAUD = 115200
ModuleFactory = Any  # conftest.DriverFactory

pytestmark = pytest.mark.integration


async def test_driver_discovers_the_simulators_model_chain(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    module = connect(sim_line.port)
    chain = await module.discover()
    assert chain.base_address == 40000
    assert list(chain.addresses) == [1, 701, 702, 703, 704, 713]
    assert chain.lengths == {1: 66, 701: 153, 702: 50, 703: 17, 704: 65, 713: 7}
    identity = await module.read_identity()
    assert identity.manufacturer == "V2G-SIM"
    assert identity.serial_number == "SIM0001"
    ratings = await module.read_ratings()
    assert (ratings.max_charge_w, ratings.max_discharge_w) == (11000.0, 11000.0)


async def test_minus_7kw_converges_with_the_modelled_lag(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    module = connect(sim_line.port)
    model = sim_line.chargers[1].model
    tau = model.spec.lag_tau_s
    await module.write_setpoint(-7000.0)
    assert model.setpoint_w == -7000.0
    start = model.now_s
    readings = []
    for _ in range(40):
        model.step(0.25)
        measured = await module.read_measurement()
        expected = -7000.0 * (1 - math.exp(-(model.now_s - start) / tau))
        readings.append(measured.power_w)
        assert measured.power_w == pytest.approx(expected, abs=1.0)  # W_SF = 0: 1 W steps
    assert readings == sorted(readings, reverse=True)  # monotonic approach
    assert readings[-1] == pytest.approx(-7000.0, abs=1.0)
    assert measured.ev_connected
    assert measured.soc_pct == pytest.approx(model.soc_pct, abs=0.05)
    assert measured.grid_freq_hz == pytest.approx(50.0, abs=0.2)
    assert measured.grid_voltage_v == pytest.approx(230.0, abs=5.0)
    assert measured.faults == frozenset()


async def test_minus_7kw_converges_in_accelerated_real_time(connect: ModuleFactory) -> None:
    options = SimulatorOptions(baudrate=BAUD, time_scale=20.0, plug_in=True)
    async with SimulatorRuntime(options) as sim:
        module = connect(sim.port)
        await module.write_setpoint(-7000.0)
        powers = [(await module.read_measurement()).power_w]
        async with asyncio.timeout(10.0):  # ~1 s expected (8 tau at 20x)
            while abs(powers[-1] + 7000.0) > 2.0:
                powers.append((await module.read_measurement()).power_w)
        assert powers[0] > -7000.0 + 1000.0  # it did not jump: the lag is visible


async def test_energy_registers_match_the_integral_of_power(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    module = connect(sim_line.port)
    model = sim_line.chargers[1].model
    first = await module.read_measurement()
    samples = [(model.now_s, first.power_w)]
    for setpoint, steps in ((5000.0, 60), (-7000.0, 120)):
        await module.write_setpoint(setpoint)
        for _ in range(steps):
            model.step(0.05)
            samples.append((model.now_s, (await module.read_measurement()).power_w))
    last = await module.read_measurement()
    integral_wh = (
        sum((p0 + p1) / 2 * (t1 - t0) for (t0, p0), (t1, p1) in itertools.pairwise(samples)) / 3600
    )
    net_wh = (last.energy_import_wh - first.energy_import_wh) - (
        last.energy_export_wh - first.energy_export_wh
    )
    duration_s = samples[-1][0] - samples[0][0]
    # register resolution 0.1 Wh each; sampled power resolution 1 W
    assert net_wh == pytest.approx(integral_wh, abs=0.2 + 0.5 * duration_s / 3600)
    assert last.energy_import_wh > 0.5
    assert last.energy_export_wh > 5.0


async def test_scale_factors_round_trip(connect: ModuleFactory) -> None:
    sf = ScaleFactors(w_sf=1, wset_sf=1, totwh_sf=0, v_sf=-2, hz_sf=-3, rating_w_sf=2, pct_sf=-2)
    options = SimulatorOptions(baudrate=BAUD, time_scale=0.0, plug_in=True, scale_factors=sf)
    async with SimulatorRuntime(options) as sim:
        module = connect(sim.port)
        model = sim.chargers[1].model
        await module.write_setpoint(-7354.0)
        assert model.setpoint_w == -7350.0  # WSet_SF=1: 10 W steps, exact in the module
        wset = await module._link.read(sim.chargers[1].image.addresses[704] + 24, 2)
        assert wset == [0x0000, 735]  # +735 x 10 W = injection (discharge), DER sign
        model.step(20.0)
        measured = await module.read_measurement()
        assert measured.power_w == -7350.0
        assert measured.grid_voltage_v == pytest.approx(model.grid_voltage_v, abs=0.01)
        assert measured.grid_freq_hz == pytest.approx(model.grid_freq_hz, abs=0.001)
        assert measured.soc_pct == pytest.approx(model.soc_pct, abs=0.01)
        assert measured.energy_export_wh == math.floor(model.energy_injected_wh)
        ratings = await module.read_ratings()
        assert ratings.max_discharge_w == 11000.0


async def test_faults_surface_as_typed_errors_and_codes(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    module = connect(sim_line.port)
    charger = sim_line.chargers[1]
    await module.write_setpoint(-7000.0)
    charger.model.step(3.0)
    cases = [
        ("ground_fault", "GROUND_FAULT"),
        ("over_temp", "OVER_TEMP"),
        ("ac_over_voltage", "AC_OVER_VOLTAGE"),
        ("dc_over_voltage", "DC_OVER_VOLTAGE"),
        ("frequency_excursion", "MODULE_FAULT"),
    ]
    for kind, code in cases:
        charger.model.inject_fault(kind)
        measured = await module.read_measurement()
        assert measured.faults == frozenset({code}), kind
        assert measured.power_w == 0.0
        with pytest.raises(ModuleFaultError) as err:
            await module.write_setpoint(-7000.0)
        assert err.value.codes == frozenset({code})
        await module.write_setpoint(0.0)  # stopping is always accepted
        charger.model.clear_fault()
    assert (await module.read_measurement()).faults == frozenset()
    charger.model.inject_fault("frequency_excursion")
    assert (await module.read_measurement()).grid_freq_hz == pytest.approx(51.6)


async def test_module_side_revert_timer_and_es_stop(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    module = connect(sim_line.port)
    model = sim_line.chargers[1].model
    await module.program_revert(timeout_s=3.0)
    await module.write_setpoint(-7000.0)
    model.step(2.5)
    assert await module.read_revert_remaining_s() == 1.0
    assert (await module.read_measurement()).power_w < -5000.0
    model.step(10.0)  # the daemon "died": no new setpoint write
    assert abs((await module.read_measurement()).power_w) <= 1.0
    await module.write_setpoint(-3000.0)
    model.step(2.0)
    await module.set_energized(False)
    model.step(10.0)
    assert not model.energized
    assert abs((await module.read_measurement()).power_w) <= 1.0
    await module.set_energized(True)
    assert model.energized


async def test_missing_marker_model_and_illegal_address(
    sim_line: SimulatorRuntime, connect: ModuleFactory
) -> None:
    elsewhere = connect(sim_line.port, base_addresses=(0, 50000))
    with pytest.raises(ModelMissingError, match="no SunSpec marker"):
        await elsewhere.discover()
    connect.close_all()  # one owner per serial port (pyserial opens it exclusively)
    module = connect(sim_line.port)
    await module.discover()
    with pytest.raises(IllegalAddressError) as err:
        await module._link.read(39000, 4)
    assert err.value.exception_code == 2


async def test_vendor_map_is_data_driver_and_sim_follow_the_file(connect: ModuleFactory) -> None:
    vendor = load_register_map(vendor_path())
    options = SimulatorOptions(baudrate=BAUD, time_scale=0.0, plug_in=True)
    async with SimulatorRuntime(options) as sim:
        charger = sim.chargers[1]
        charger.image.register_map = vendor  # the simulated firmware speaks the vendor layout
        module = connect(sim.port, map_file=str(vendor_path()))
        await module.write_setpoint(-7000.0)
        words = await module._link.read(charger.image.addresses[704] + 24, 2)
        assert words == [0xFFFF, 0xE4A8]  # absorption positive: -7000 on the wire
        charger.model.step(20.0)
        assert (await module.read_measurement()).power_w == pytest.approx(-7000.0, abs=1.0)
        connect.close_all()
        standard = connect(sim.port)  # the standard map misreads this device: W is elsewhere
        assert (await standard.read_measurement()).power_w == 0.0


def vendor_path() -> Path:
    return (
        Path(__file__).resolve().parents[4]
        / "packages/gateway/v2g_gateway/hw/power_module/vendor_example_map.json"
    )
