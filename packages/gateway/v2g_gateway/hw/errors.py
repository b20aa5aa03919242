"""Typed errors of the hardware layer: each says what failed on the wire or in the device."""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "ContactorError",
    "FramingError",
    "HardwareError",
    "IllegalAddressError",
    "LinkDownError",
    "ModelMissingError",
    "ModuleFaultError",
    "ModuleRejectedError",
    "NoResponseError",
    "PowerModuleError",
    "RegisterMapError",
    "ResponseTimeoutError",
    "SensorError",
]


class HardwareError(Exception):
    """Base of every hardware-layer error."""


class PowerModuleError(HardwareError):
    """The power module could not be read or commanded."""


class LinkDownError(PowerModuleError):
    """The serial device is absent or closed (cable pulled, adapter unplugged)."""


class ResponseTimeoutError(PowerModuleError):
    """No answer within the timeout after every retry (bytes may have been lost)."""


class NoResponseError(ResponseTimeoutError):
    """Nothing at all came back: wrong device id, module powered off or not answering."""


class FramingError(ResponseTimeoutError):
    """Bytes came back but no valid frame (CRC or framing error) after every retry."""


class ModuleRejectedError(PowerModuleError):
    """The module answered with a Modbus exception; ``exception_code`` is the wire code."""

    def __init__(self, message: str, *, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class IllegalAddressError(ModuleRejectedError):
    """Modbus exception 02: the register range does not exist on this module."""


class ModelMissingError(PowerModuleError):
    """The SunSpec marker or a required model is not on the device."""


class ModuleFaultError(PowerModuleError):
    """The module reports a fault; ``codes`` holds stable event codes (e.g. ``GROUND_FAULT``)."""

    def __init__(self, codes: frozenset[str]) -> None:
        super().__init__("power module in fault: " + ", ".join(sorted(codes)))
        self.codes = codes


class RegisterMapError(PowerModuleError):
    """A register map data file is unusable."""


class SensorError(HardwareError):
    """The INA228 sensor could not be read or identified."""


class CalibrationError(HardwareError):
    """A calibration file is unusable or a fit is refused."""


class ContactorError(HardwareError):
    """The contactor's GPIO line could not be requested."""
