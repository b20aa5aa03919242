"""Start-up wiring of the control process's devices: the only place that opens the serial
port, the i2c bus, the contactor line or the simulator's socket. Which device is real and
which is simulated is decided by configuration alone."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from v2g_gateway.config import ControlProcessConfig, GatewayConfig, PowerSensorConfig
from v2g_gateway.contactor import SimulatedContactor, SimulatorSection, SysfsGpioContactor
from v2g_gateway.control.ports import Contactor, EvLink, PowerSensor, PowerStage
from v2g_gateway.hw.power_module.client import open_power_module
from v2g_gateway.hw.power_sensor.calibration import load_calibration
from v2g_gateway.hw.power_sensor.driver import I2cBus, Ina228
from v2g_sim.control import RemoteEvLink, RemoteI2cBus, SimControlClient

__all__ = ["Hardware", "open_hardware"]


@dataclass(frozen=True, slots=True)
class Hardware:
    stage: PowerStage
    sensor: PowerSensor
    contactor: Contactor


@contextlib.asynccontextmanager
async def open_hardware(cfg: ControlProcessConfig) -> AsyncIterator[Hardware]:
    """Open every device named in ``cfg``; closes them on exit."""
    with contextlib.ExitStack() as stack:
        stage, client = open_power_module(cfg.power_module)
        stack.callback(client.close)
        sensor = Ina228(
            _open_i2c_bus(cfg.power_sensor, cfg.simulator, stack),
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
        contactor = _open_contactor(cfg, stack)
        yield Hardware(stage=stage, sensor=sensor, contactor=contactor)


def _simulator_client(sim: SimulatorSection, stack: contextlib.ExitStack) -> SimControlClient:
    return stack.enter_context(SimControlClient(sim.socket))


def _open_i2c_bus(
    section: PowerSensorConfig, sim: SimulatorSection, stack: contextlib.ExitStack
) -> I2cBus:
    if section.kind == "simulated":
        return RemoteI2cBus(_simulator_client(sim, stack), device_id=sim.device_id)
    from smbus2 import SMBus  # only a real deployment needs the kernel's i2c-dev

    return stack.enter_context(SMBus(section.i2c_bus))


def _open_contactor(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> Contactor:
    section = cfg.contactor
    if section.kind == "simulated":
        sim = cfg.simulator
        return SimulatedContactor(_simulator_client(sim, stack), device_id=sim.device_id)
    gpio = SysfsGpioContactor(section.gpio_value_path, active_low=section.active_low)
    stack.callback(gpio.release)
    return gpio


def build_ev_link(config: GatewayConfig) -> EvLink | None:
    """The EV communication controller named by ``[ev_link]`` (``None``: no V2X data)."""
    if config.ev_link.kind == "simulated":
        return RemoteEvLink(config.simulator.socket, device_id=config.simulator.device_id)
    return None
