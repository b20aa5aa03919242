"""INA228 power sensor: pure register maths, the driver, and per-channel calibration."""

from v2g_gateway.hw.power_sensor.calibration import (
    CalibrationFit,
    ChannelCalibration,
    fit_calibration,
    load_calibration,
    save_calibration,
)
from v2g_gateway.hw.power_sensor.driver import I2cBus, Ina228

__all__ = [
    "CalibrationFit",
    "ChannelCalibration",
    "I2cBus",
    "Ina228",
    "fit_calibration",
    "load_calibration",
    "save_calibration",
]
