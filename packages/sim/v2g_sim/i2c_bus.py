"""A simulated i2c bus with INA228 chips answering ``i2c_rdwr`` from the module's physical state.

Each chip measures the module's output power on a DC link of ``dc_link_voltage_v`` (seen
through a front end dividing the voltage by ``voltage_scale``) with a physical shunt of
``shunt_ohm``. ``gain_error`` and ``offset_error_w`` make the chip read
``(1 + gain_error) x P + offset_error_w`` so calibration has something real to correct.
CURRENT/POWER follow the SHUNT_CAL the driver programs, as on the real chip.
"""

from __future__ import annotations

import ctypes
import errno
import random
from dataclasses import dataclass, field
from typing import Any

from v2g_gateway.hw.power_sensor import ina228
from v2g_sim.module import PowerModuleModel

__all__ = ["SimulatedI2cBus", "SimulatedIna228"]

_I2C_M_RD = 0x0001
_MAX20 = (1 << 19) - 1


def _clamp20(value: float) -> int:
    return max(-_MAX20 - 1, min(_MAX20, round(value)))


@dataclass(slots=True)
class SimulatedIna228:
    """One INA228 on the module's output."""

    model: PowerModuleModel
    shunt_ohm: float = 0.001
    voltage_scale: float = 10.0
    gain_error: float = 0.0
    offset_error_w: float = 0.0
    noise_w: float = 0.0
    seed: int = 0
    registers: dict[int, int] = field(default_factory=dict)
    pointer: int = 0
    _energy_j: float = 0.0
    _charge_c: float = 0.0
    _last_s: float | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.registers.update({0x00: 0, 0x01: 0xFB68, 0x02: 0x1000, 0x03: 0})

    def _measured_current_a(self) -> float:
        power = self.model.power_w
        noise = self._rng.gauss(0.0, self.noise_w) if self.noise_w else 0.0
        measured_w = (1.0 + self.gain_error) * power + self.offset_error_w + noise
        return measured_w / self.model.spec.dc_link_voltage_v

    def _current_lsb(self) -> float | None:
        cal = self.registers[0x02] & 0x7FFF
        if cal == 0:
            return None
        return cal / (13107.2e6 * self.shunt_ohm * (4 if self._adc_range_low else 1))

    @property
    def _adc_range_low(self) -> bool:
        return bool(self.registers[0x00] & ina228.CONFIG_ADCRANGE)

    def _accumulate(self, current_a: float, chip_v: float) -> None:
        now = self.model.now_s
        if self._last_s is not None and now > self._last_s:
            dt = now - self._last_s
            self._energy_j += abs(current_a * chip_v) * dt
            self._charge_c += current_a * dt
        self._last_s = now

    def read(self, reg: int) -> bytes:
        """The register's bytes now."""
        size = ina228.REG_SIZE.get(reg)
        if size is None:
            raise OSError(errno.EREMOTEIO, f"INA228 has no register 0x{reg:02x}")
        current = self._measured_current_a()
        chip_v = self.model.spec.dc_link_voltage_v / self.voltage_scale
        self._accumulate(current, chip_v)
        return ina228.to_bytes(self._value(reg, current, chip_v), size)

    def _value(self, reg: int, current_a: float, chip_v: float) -> int:
        lsb = self._current_lsb()
        shunt_lsb = ina228.VSHUNT_LSB_V[int(self._adc_range_low)]
        conversions = {
            0x04: lambda: ina228.encode_20bit(_clamp20(current_a * self.shunt_ohm / shunt_lsb)),
            0x05: lambda: ina228.encode_20bit(_clamp20(chip_v / ina228.VBUS_LSB_V)),
            0x06: lambda: round(40.0 / ina228.DIETEMP_LSB_C) & 0xFFFF,
            0x07: lambda: ina228.encode_20bit(_clamp20(current_a / lsb)) if lsb else 0,
            0x08: lambda: min(0xFFFFFF, round(abs(current_a * chip_v) / (3.2 * lsb))) if lsb else 0,
            0x09: lambda: round(self._energy_j / (16 * 3.2 * lsb)) if lsb else 0,
            0x0A: lambda: round(self._charge_c / lsb) & (2**40 - 1) if lsb else 0,
            0x3E: lambda: ina228.MANUFACTURER_ID,
            0x3F: lambda: (ina228.DEVICE_ID << 4) | 0x1,
        }
        if reg in conversions:
            return int(conversions[reg]())
        return self.registers.get(reg, 0)

    def write(self, reg: int, value: int) -> None:
        if reg not in (0x00, 0x01, 0x02, 0x03):
            raise OSError(errno.EREMOTEIO, f"INA228 register 0x{reg:02x} is read-only")
        if reg == 0x00 and value & ina228.CONFIG_RSTACC:
            self._energy_j = self._charge_c = 0.0
            value &= ~ina228.CONFIG_RSTACC
        self.registers[reg] = value


class SimulatedI2cBus:
    """Stands in for ``smbus2.SMBus``: ``i2c_rdwr`` over the chips by address."""

    def __init__(self, chips: dict[int, SimulatedIna228] | None = None) -> None:
        self.chips: dict[int, SimulatedIna228] = dict(chips or {})

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        for msg in i2c_msgs:
            chip = self.chips.get(int(msg.addr))
            if chip is None:
                raise OSError(errno.ENXIO, f"no device at i2c address 0x{int(msg.addr):02x}")
            if msg.flags & _I2C_M_RD:
                data = chip.read(chip.pointer)[: msg.len]
                ctypes.memmove(msg.buf, data, len(data))
            else:
                self._write(chip, bytes(msg))

    def transfer(self, address: int, write: bytes, read_len: int) -> bytes:
        """One write-then-read transaction on plain bytes (for the control socket)."""
        chip = self.chips.get(address)
        if chip is None:
            raise OSError(errno.ENXIO, f"no device at i2c address 0x{address:02x}")
        if write:
            self._write(chip, write)
        return chip.read(chip.pointer)[:read_len] if read_len else b""

    @staticmethod
    def _write(chip: SimulatedIna228, data: bytes) -> None:
        if not data:
            return
        chip.pointer = data[0]
        if len(data) >= 3:
            chip.write(data[0], int.from_bytes(data[1:3], "big"))
