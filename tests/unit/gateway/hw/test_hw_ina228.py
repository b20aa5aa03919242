"""INA228 register maths (tables of exact values) and the driver on the simulated bus."""

from __future__ import annotations

from typing import Any

import pytest

from v2g_gateway.hw.errors import SensorError
from v2g_gateway.hw.power_sensor import ChannelCalibration, Ina228
from v2g_gateway.hw.power_sensor import ina228 as m
from v2g_sim.ev import EvSpec
from v2g_sim.i2c_bus import SimulatedI2cBus, SimulatedIna228
from v2g_sim.module import PowerModuleModel


def test_shunt_cal_from_shunt_and_max_current() -> None:
    lsb = m.current_lsb_a(40.0)
    assert lsb == pytest.approx(7.62939453125e-05)
    assert m.shunt_cal(lsb, 0.001) == 1000
    assert m.shunt_cal(lsb, 0.001, adc_range_low=True) == 4000
    with pytest.raises(ValueError, match="SHUNT_CAL"):
        m.shunt_cal(lsb, 10.0)


@pytest.mark.parametrize(
    ("raw", "volts"), [(0x000000, 0.0), (0x000010, 195.3125e-6), (0x0C8000, 10.0)]
)
def test_vbus_decoding(raw: int, volts: float) -> None:
    assert m.decode_vbus_v(raw) == pytest.approx(volts)


@pytest.mark.parametrize(
    ("raw", "counts"), [(0x000010, 1), (0xFFFFF0, -1), (0x7FFFF0, 2**19 - 1), (0x800000, -(2**19))]
)
def test_signed_20_bit_current_in_bits_23_to_4(raw: int, counts: int) -> None:
    assert m.decode_current_a(raw, 0.5) == counts * 0.5
    assert m.encode_20bit(counts) == raw


def test_power_energy_charge_and_temperature_lsbs() -> None:
    lsb = 1e-4
    assert m.decode_power_w(1000, lsb) == pytest.approx(0.32)
    assert m.decode_energy_j(1000, lsb) == pytest.approx(5.12)
    assert m.decode_charge_c((1 << 40) - 10, lsb) == pytest.approx(-1e-3)
    assert m.decode_die_temp_c(0x0C80) == pytest.approx(25.0)
    assert m.decode_die_temp_c(0xFF80) == pytest.approx(-1.0)
    assert m.decode_vshunt_v(0x000010) == pytest.approx(312.5e-9)
    assert m.decode_vshunt_v(0x000010, adc_range_low=True) == pytest.approx(78.125e-9)


def test_bytes_helpers_are_big_endian() -> None:
    assert m.to_bytes(0x5449, 2) == b"\x54\x49"
    assert m.to_bytes(-1, 3) == b"\xff\xff\xff"
    assert m.from_bytes(b"\x01\x02\x03\x04\x05") == 0x0102030405


def _sensor(power_w: float, **chip: Any) -> tuple[Ina228, PowerModuleModel]:
    model = PowerModuleModel()
    model.plug_in(EvSpec())
    model.power_w = power_w
    bus = SimulatedI2cBus({0x41: SimulatedIna228(model, **chip)})
    sensor = Ina228(bus, address=0x41, shunt_ohm=0.001, max_current_a=40.0, voltage_scale=10.0)
    sensor.initialize()
    return sensor, model


@pytest.mark.parametrize("power_w", [-7000.0, -1234.5, 0.0, 3000.0, 11000.0])
def test_driver_reads_signed_power_through_i2c_rdwr(power_w: float) -> None:
    sensor, _ = _sensor(power_w)
    assert sensor.read_bus_voltage_v() == pytest.approx(400.0, abs=0.002)
    assert sensor.read_power_w() == pytest.approx(power_w, abs=0.05)


def test_driver_applies_channel_calibration_to_injected_error() -> None:
    sensor, _ = _sensor(5000.0, gain_error=0.02, offset_error_w=30.0)
    raw = sensor.read_raw_power_w()
    assert raw == pytest.approx(5000 * 1.02 + 30, abs=0.05)
    sensor.calibration = ChannelCalibration(offset_w=-30 / 1.02, gain=1 / 1.02)
    assert sensor.read_power_w() == pytest.approx(5000.0, abs=0.05)


def test_energy_and_charge_accumulate_and_reset() -> None:
    sensor, model = _sensor(4000.0)
    sensor.read_energy_j()
    model.now_s += 10.0
    assert sensor.read_energy_j() == pytest.approx(40_000.0, rel=1e-3)
    assert sensor.read_charge_c() == pytest.approx(100.0, rel=1e-3)
    sensor.reset_accumulators()
    assert sensor.read_energy_j() == 0.0


def test_wrong_chip_or_absent_address_is_a_sensor_error() -> None:
    sensor = Ina228(SimulatedI2cBus({}), shunt_ohm=0.001, max_current_a=40.0)
    with pytest.raises(SensorError, match="0x40"):
        sensor.initialize()

    class OtherChip:
        """Some other i2c device answering zeros."""

        def i2c_rdwr(self, *msgs: object) -> None:
            return None

    with pytest.raises(SensorError, match="no INA228"):
        Ina228(OtherChip(), shunt_ohm=0.001, max_current_a=40.0).initialize()
