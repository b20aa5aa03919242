"""Configuration sections of the hardware layer (``[power_module]``, ``[power_sensor]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from v2g_common.config import ConfigSection

__all__ = ["PowerModuleSection", "PowerSensorSection"]


class PowerModuleSection(ConfigSection):
    """Serial link and register map of the SunSpec power module (Modbus RTU on RS-485).

    Modbus serial's standard framing is 8E1, hence ``parity = "E"``. ``map_file`` empty means
    the packaged standard SunSpec map; a vendor whose offsets differ ships another JSON file.
    """

    port: str = "/dev/ttyRS485"
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    device_id: int = Field(default=1, ge=1, le=247)
    timeout_s: float = Field(default=0.5, gt=0, le=10)
    retries: int = Field(default=2, ge=0, le=10)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    map_file: Path | None = None
    #: Read each model's scale factors once per discovery (SunSpec devices keep them fixed);
    #: false re-reads them with every value (longer requests).
    cache_scale_factors: bool = True
    base_addresses: tuple[int, ...] = (40000, 0, 50000)


class PowerSensorSection(ConfigSection):
    """INA228 on i2c behind an isolated front end (bus voltage scaled by ``voltage_scale``).

    ``calibration_file`` holds per-channel ``offset_w`` / ``gain`` (see
    ``v2g_gateway.hw.power_sensor.calibration``); a missing file means identity calibration.
    """

    i2c_bus: int = Field(default=1, ge=0)
    address: int = Field(default=0x40, ge=0x40, le=0x4F)
    channel: str = "ch0"
    shunt_ohm: float = Field(default=0.001, gt=0)
    max_current_a: float = Field(default=40.0, gt=0)
    adc_range_low: bool = False
    voltage_scale: float = Field(default=10.0, gt=0)
    calibration_file: Path = Path("/var/lib/v2g-gateway/sensor-calibration.json")
