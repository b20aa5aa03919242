"""The simulator behind the gateway's own device interfaces: ``kind = "simulated"`` for
``[contactor]``, ``[power_sensor]`` (the INA228's i2c bus), ``[ev_link]`` and the
``operating_point`` that ``calibrate-sensors --sim-socket`` drives, registered in
v2g-sim's ``pyproject.toml`` under the entry-point group ``v2g_gateway.adapters`` (the gateway
finds them there; it never imports the simulator). Each reaches a running ``v2g-sim`` through
its control socket, ``[simulator] socket`` and ``device_id``.

The power stage needs no adapter: v2g-sim serves the real SunSpec map over Modbus RTU on a
pty, so the gateway's own driver talks to it (``[power_module] port``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from v2g_gateway.hw.errors import HardwareError
from v2g_sim.control_client import (
    ControlError,
    RemoteContactor,
    RemoteEvLink,
    RemoteI2cBus,
    RemoteOperatingPoint,
    SimControlClient,
)

if TYPE_CHECKING:
    from v2g_gateway.adapters import (
        ContactorFactory,
        EvLinkFactory,
        I2cBusFactory,
        OperatingPointFactory,
    )
    from v2g_gateway.config import GatewayConfig
    from v2g_gateway.devices import ControlProcessConfig, SimulatorSection

__all__ = ["open_contactor", "open_ev_link", "open_i2c_bus", "open_operating_point"]


class SimulatorUnavailable(HardwareError):
    """The configured simulator's control socket does not answer."""


def _client(sim: SimulatorSection, stack: contextlib.ExitStack) -> SimControlClient:
    try:
        return stack.enter_context(SimControlClient(sim.socket))
    except ControlError as exc:
        raise SimulatorUnavailable(str(exc)) from None


def open_contactor(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> RemoteContactor:
    """``[contactor] kind = "simulated"``: the relay of charger ``[simulator] device_id``."""
    return RemoteContactor(_client(cfg.simulator, stack), device_id=cfg.simulator.device_id)


def open_i2c_bus(cfg: ControlProcessConfig, stack: contextlib.ExitStack) -> RemoteI2cBus:
    """``[power_sensor] kind = "simulated"``: the simulated INA228's i2c bus."""
    return RemoteI2cBus(_client(cfg.simulator, stack), device_id=cfg.simulator.device_id)


def open_ev_link(config: GatewayConfig) -> RemoteEvLink:
    """``[ev_link] kind = "simulated"``: the plugged-in simulated EV's declared needs."""
    return RemoteEvLink(config.simulator.socket, device_id=config.simulator.device_id)


def open_operating_point(
    cfg: ControlProcessConfig, stack: contextlib.ExitStack
) -> RemoteOperatingPoint:
    """``calibrate-sensors --sim-socket``: drives the simulated module to each SETPOINT."""
    return RemoteOperatingPoint(_client(cfg.simulator, stack), device_id=cfg.simulator.device_id)


if TYPE_CHECKING:  # each factory matches its port's protocol (checked by mypy)
    _contactor: ContactorFactory = open_contactor
    _i2c_bus: I2cBusFactory = open_i2c_bus
    _ev_link: EvLinkFactory = open_ev_link
    _operating_point: OperatingPointFactory = open_operating_point
