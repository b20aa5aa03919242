"""INA228 driver on an injected smbus2-style bus (``i2c_rdwr``); satisfies ``PowerSensor``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from smbus2 import i2c_msg

from v2g_gateway.control.ports import PowerSensor
from v2g_gateway.hw.errors import SensorError
from v2g_gateway.hw.power_sensor import ina228
from v2g_gateway.hw.power_sensor.calibration import ChannelCalibration

__all__ = ["I2cBus", "Ina228"]


class I2cBus(Protocol):
    """What the driver needs of ``smbus2.SMBus`` (or the simulated bus)."""

    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...


class Ina228:
    """One INA228 channel. Signed power = bus voltage * ``voltage_scale`` * signed current,
    then the channel calibration (``gain * raw + offset``)."""

    def __init__(
        self,
        bus: I2cBus,
        *,
        address: int = 0x40,
        shunt_ohm: float,
        max_current_a: float,
        voltage_scale: float = 1.0,
        adc_range_low: bool = False,
        calibration: ChannelCalibration | None = None,
    ) -> None:
        self._bus = bus
        self.address = address
        self.current_lsb = ina228.current_lsb_a(max_current_a)
        self._shunt_cal = ina228.shunt_cal(self.current_lsb, shunt_ohm, adc_range_low=adc_range_low)
        self._adc_range_low = adc_range_low
        self.voltage_scale = voltage_scale
        self.calibration = calibration or ChannelCalibration()

    # --- bus access -----------------------------------------------------------------------
    def read_register(self, reg: int) -> int:
        size = ina228.REG_SIZE[reg]
        msg = i2c_msg.read(self.address, size)
        try:
            self._bus.i2c_rdwr(i2c_msg.write(self.address, [reg]), msg)
        except OSError as exc:
            raise SensorError(f"INA228 @0x{self.address:02x} reg 0x{reg:02x}: {exc}") from None
        return ina228.from_bytes(bytes(msg))

    def write_register(self, reg: int, value: int) -> None:
        try:
            self._bus.i2c_rdwr(i2c_msg.write(self.address, [reg, *ina228.to_bytes(value, 2)]))
        except OSError as exc:
            raise SensorError(f"INA228 @0x{self.address:02x} write 0x{reg:02x}: {exc}") from None

    # --- set-up ---------------------------------------------------------------------------
    def initialize(self) -> None:
        """Check the chip's identity, then program ADCRANGE and SHUNT_CAL."""
        manufacturer = self.read_register(ina228.REG["MANUFACTURER_ID"])
        device = self.read_register(ina228.REG["DEVICE_ID"]) >> 4
        if manufacturer != ina228.MANUFACTURER_ID or device != ina228.DEVICE_ID:
            raise SensorError(
                f"no INA228 at 0x{self.address:02x}: manufacturer 0x{manufacturer:04x}, "
                f"device 0x{device:03x}"
            )
        config = ina228.CONFIG_ADCRANGE if self._adc_range_low else 0
        self.write_register(ina228.REG["CONFIG"], config)
        self.write_register(ina228.REG["SHUNT_CAL"], self._shunt_cal)

    def reset_accumulators(self) -> None:
        config = ina228.CONFIG_ADCRANGE if self._adc_range_low else 0
        self.write_register(ina228.REG["CONFIG"], config | ina228.CONFIG_RSTACC)

    # --- readings -------------------------------------------------------------------------
    def read_bus_voltage_v(self) -> float:
        """Voltage on the measured path (front-end scale applied)."""
        return ina228.decode_vbus_v(self.read_register(ina228.REG["VBUS"])) * self.voltage_scale

    def read_current_a(self) -> float:
        return ina228.decode_current_a(self.read_register(ina228.REG["CURRENT"]), self.current_lsb)

    def read_raw_power_w(self) -> float:
        """Uncalibrated signed power (the POWER register is unsigned, so V * I is used)."""
        return self.read_bus_voltage_v() * self.read_current_a()

    def read_power_w(self) -> float:
        return self.calibration.apply(self.read_raw_power_w())

    def read_energy_j(self) -> float:
        raw = self.read_register(ina228.REG["ENERGY"])
        return ina228.decode_energy_j(raw, self.current_lsb) * self.voltage_scale

    def read_charge_c(self) -> float:
        return ina228.decode_charge_c(self.read_register(ina228.REG["CHARGE"]), self.current_lsb)

    def read_die_temp_c(self) -> float:
        return ina228.decode_die_temp_c(self.read_register(ina228.REG["DIETEMP"]))


if TYPE_CHECKING:  # structural conformance to the control loop's port, checked by mypy
    _sensor: type[PowerSensor] = Ina228
