"""Contactor drivers (the local output relay, independent of the module's own stop).

``gpio_sysfs`` drives a GPIO line through its sysfs ``value`` file (exported and set to
output by the installer, see docs/installing-gateway.md); ``simulated`` asks a running
``v2g-sim`` over its control socket. Both satisfy ``v2g_gateway.control.ports.Contactor``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from v2g_common.config import ConfigSection
from v2g_sim.control import SimControlClient

__all__ = ["ContactorSection", "SimulatedContactor", "SimulatorSection", "SysfsGpioContactor"]


class ContactorSection(ConfigSection):
    """``kind = "gpio_sysfs"`` (a relay on a GPIO line) or ``"simulated"`` (v2g-sim)."""

    kind: Literal["gpio_sysfs", "simulated"] = "gpio_sysfs"
    gpio_value_path: Path = Path("/sys/class/gpio/gpio17/value")
    active_low: bool = False


class SimulatorSection(ConfigSection):
    """Where ``simulated`` devices live: the v2g-sim control socket and the module's id."""

    socket: Path = Path("/tmp/v2g-sim.sock")
    device_id: int = Field(default=1, ge=1, le=247)


class SysfsGpioContactor:
    """A relay on a GPIO line; ``closed`` reads the line back, so a stuck driver shows."""

    def __init__(self, value_path: Path, *, active_low: bool = False) -> None:
        self._path = value_path
        self._on, self._off = (b"0", b"1") if active_low else (b"1", b"0")
        self._fd = os.open(value_path, os.O_RDWR)

    @property
    def closed(self) -> bool:
        return os.pread(self._fd, 1, 0) == self._on

    def open(self) -> None:
        os.pwrite(self._fd, self._off, 0)

    def close(self) -> None:
        os.pwrite(self._fd, self._on, 0)

    def release(self) -> None:
        os.close(self._fd)


class SimulatedContactor:
    """The contactor of a charger inside a running v2g-sim (its ``contactor`` command)."""

    def __init__(self, client: SimControlClient, *, device_id: int) -> None:
        self._client = client
        self._device_id = device_id

    @property
    def closed(self) -> bool:
        status = self._client.request("status", device_id=self._device_id)
        return bool(status["contactor_closed"])

    def open(self) -> None:
        self._client.request("contactor", device_id=self._device_id, closed=False)

    def close(self) -> None:
        self._client.request("contactor", device_id=self._device_id, closed=True)
