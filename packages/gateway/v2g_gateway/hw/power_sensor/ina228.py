"""Pure INA228 register maths (TI SBOSA20): sizes, SHUNT_CAL, and raw <-> engineering values.

Registers are big-endian; 24-bit conversion registers carry the value in bits 23:4.
"""

from __future__ import annotations

__all__ = [
    "DEVICE_ID",
    "MANUFACTURER_ID",
    "REG",
    "REG_SIZE",
    "current_lsb_a",
    "decode_charge_c",
    "decode_current_a",
    "decode_die_temp_c",
    "decode_energy_j",
    "decode_power_w",
    "decode_vbus_v",
    "decode_vshunt_v",
    "encode_20bit",
    "from_bytes",
    "shunt_cal",
    "to_bytes",
]

REG = {
    "CONFIG": 0x00,
    "ADC_CONFIG": 0x01,
    "SHUNT_CAL": 0x02,
    "SHUNT_TEMPCO": 0x03,
    "VSHUNT": 0x04,
    "VBUS": 0x05,
    "DIETEMP": 0x06,
    "CURRENT": 0x07,
    "POWER": 0x08,
    "ENERGY": 0x09,
    "CHARGE": 0x0A,
    "MANUFACTURER_ID": 0x3E,
    "DEVICE_ID": 0x3F,
}
#: Register width in bytes.
REG_SIZE = {
    0x00: 2,
    0x01: 2,
    0x02: 2,
    0x03: 2,
    0x04: 3,
    0x05: 3,
    0x06: 2,
    0x07: 3,
    0x08: 3,
    0x09: 5,
    0x0A: 5,
    0x3E: 2,
    0x3F: 2,
}
MANUFACTURER_ID = 0x5449  # "TI"
DEVICE_ID = 0x228  # in DEVICE_ID bits 15:4
CONFIG_ADCRANGE = 1 << 4
CONFIG_RSTACC = 1 << 14

VBUS_LSB_V = 195.3125e-6
VSHUNT_LSB_V = (312.5e-9, 78.125e-9)  # ADCRANGE = 0, 1
DIETEMP_LSB_C = 7.8125e-3


def from_bytes(data: bytes | list[int], *, signed: bool = False) -> int:
    """Big-endian register bytes to an integer."""
    return int.from_bytes(bytes(data), "big", signed=signed)


def to_bytes(value: int, size: int) -> bytes:
    """An integer (two's complement if negative) to ``size`` big-endian bytes."""
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


def current_lsb_a(max_current_a: float) -> float:
    """CURRENT_LSB = maximum expected current / 2^19."""
    if max_current_a <= 0:
        raise ValueError("max_current_a must be > 0")
    return max_current_a / 2**19


def shunt_cal(current_lsb: float, shunt_ohm: float, *, adc_range_low: bool = False) -> int:
    """SHUNT_CAL = 13107.2e6 * CURRENT_LSB * R_shunt (* 4 when ADCRANGE = 1); 15 bits."""
    value = round(13107.2e6 * current_lsb * shunt_ohm * (4 if adc_range_low else 1))
    if not 0 < value < 0x8000:
        raise ValueError(f"SHUNT_CAL {value} out of range: check shunt_ohm and max_current_a")
    return value


def _signed20(raw24: int) -> int:
    value = (raw24 >> 4) & 0xFFFFF
    return value - (1 << 20) if value & (1 << 19) else value


def encode_20bit(value: int) -> int:
    """A signed 20-bit conversion result placed in bits 23:4 of a 24-bit register."""
    if not -(1 << 19) <= value < 1 << 19:
        raise ValueError(f"{value} does not fit 20 bits")
    return (value & 0xFFFFF) << 4


def decode_vshunt_v(raw24: int, *, adc_range_low: bool = False) -> float:
    return _signed20(raw24) * VSHUNT_LSB_V[int(adc_range_low)]


def decode_vbus_v(raw24: int) -> float:
    return ((raw24 >> 4) & 0xFFFFF) * VBUS_LSB_V


def decode_current_a(raw24: int, current_lsb: float) -> float:
    return _signed20(raw24) * current_lsb


def decode_power_w(raw24: int, current_lsb: float) -> float:
    """POWER is an unsigned magnitude: 3.2 * CURRENT_LSB per bit."""
    return raw24 * 3.2 * current_lsb


def decode_energy_j(raw40: int, current_lsb: float) -> float:
    return raw40 * 16 * 3.2 * current_lsb


def decode_charge_c(raw40: int, current_lsb: float) -> float:
    signed = raw40 - (1 << 40) if raw40 & (1 << 39) else raw40
    return signed * current_lsb


def decode_die_temp_c(raw16: int) -> float:
    signed = raw16 - (1 << 16) if raw16 & 0x8000 else raw16
    return signed * DIETEMP_LSB_C
