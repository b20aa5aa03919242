"""Start-up wiring of the control process's devices: the only place that opens the serial
port, the i2c bus or the contactor line. Which code opens the sensor's bus and the contactor
is the configured ``kind`` (:mod:`v2g_gateway.adapters`); the built-in kinds' factories are
here, and each imports its library (smbus2's i2c-dev, gpiod) only when it is configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from v2g_gateway.adapters import contactor_factory, i2c_bus_factory
from v2g_gateway.contactor import GpiodContactor, SysfsGpioContactor
from v2g_gateway.control.ports import Contactor, PowerSensor, PowerStage
from v2g_gateway.devices import ControlProcessConfig
from v2g_gateway.hw.errors import ContactorError, HardwareError
from v2g_gateway.hw.power_module.client import open_power_module
from v2g_gateway.hw.power_sensor.calibration import load_calibration
from v2g_gateway.hw.power_sensor.driver import I2cBus, Ina228
from v2g_gateway.paths_check import device_problems

__all__ = [
    "Hardware",
    "open_gpiod_contactor",
    "open_hardware",
    "open_smbus",
    "open_sysfs_contactor",
]

#: The consumer name the kernel shows for our line (``gpioinfo``).
GPIO_CONSUMER = "v2g-gateway contactor"


@dataclass(frozen=True, slots=True)
class Hardware:
    stage: PowerStage
    sensor: PowerSensor
    contactor: Contactor


@contextlib.contextmanager
def _named(key: str) -> Iterator[None]:
    """An OS error opening a device names the configuration key that chose it (a bare
    ``[Errno 2] ... '/dev/i2c-1'`` leaves an installer guessing which setting to fix)."""
    try:
        yield
    except OSError as exc:
        raise HardwareError(f"{key}: {exc}") from exc


@contextlib.asynccontextmanager
async def open_hardware(cfg: ControlProcessConfig) -> AsyncIterator[Hardware]:
    """Open every device named in ``cfg``; closes them on exit. A device that cannot be
    opened is a :class:`HardwareError` naming its configuration key."""
    with contextlib.ExitStack() as stack:
        stage, client = open_power_module(cfg.power_module)
        stack.callback(client.close)
        with _named("power_sensor.i2c_bus" if cfg.power_sensor.kind == "ina228" else "simulator"):
            bus = i2c_bus_factory(cfg.power_sensor.kind)(cfg, stack)
        sensor = Ina228(
            bus,
            address=cfg.power_sensor.address,
            shunt_ohm=cfg.power_sensor.shunt_ohm,
            max_current_a=cfg.power_sensor.max_current_a,
            voltage_scale=cfg.power_sensor.voltage_scale,
            adc_range_low=cfg.power_sensor.adc_range_low,
            calibration=load_calibration(
                cfg.power_sensor.calibration_file, cfg.power_sensor.channel
            ),
        )
        sensor.initialize()
        with _named(
            "contactor.gpio_value_path" if cfg.contactor.kind == "gpio_sysfs" else "contactor"
        ):
            contactor = contactor_factory(cfg.contactor.kind)(cfg, stack)
        # pymodbus opens the port lazily and would only say "not answering" at the first read
        problems = device_problems(cfg)
        if problems:
            raise HardwareError("; ".join(f"{key}: {why}" for key, why in problems))
        yield Hardware(stage=stage, sensor=sensor, contactor=contactor)


def open_smbus(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> I2cBus:
    """``[power_sensor] kind = "ina228"``: the kernel's ``/dev/i2c-N``."""
    from smbus2 import SMBus

    bus: I2cBus = stack.enter_context(SMBus(cfg.power_sensor.i2c_bus))
    return bus


def open_gpiod_contactor(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> Contactor:
    """``[contactor] kind = "gpiod"``: request the line as an output, relay open (inactive)."""
    import gpiod
    from gpiod.line import Direction, Value

    section = cfg.contactor
    settings = gpiod.LineSettings(
        direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=section.active_low
    )
    try:
        request = gpiod.request_lines(
            str(section.chip), consumer=GPIO_CONSUMER, config={section.line_offset: settings}
        )
    except OSError as exc:  # libgpiod's errors name neither the chip nor the line
        where = f"contactor.chip {section.chip} line {section.line_offset}"
        raise ContactorError(f"{where}: {exc.strerror or exc}") from exc
    relay = GpiodContactor(request, section.line_offset)
    stack.callback(relay.release)
    return relay


def open_sysfs_contactor(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> Contactor:
    """``[contactor] kind = "gpio_sysfs"``: the exported line's ``value`` file."""
    relay = SysfsGpioContactor(cfg.contactor.gpio_value_path, active_low=cfg.contactor.active_low)
    stack.callback(relay.release)
    return relay
