"""The contactor (the local output relay, independent of the module's own stop): its
``[contactor]`` section and the GPIO drivers.

``gpiod`` drives the relay's line through the kernel's GPIO character device
(``/dev/gpiochipN``, libgpiod's Python binding): the line is requested once, as an output
that starts inactive (relay open), and held by this process until it exits; the kernel
applies ``active_low``. ``gpio_sysfs`` is kept for kernels without the character device
(``CONFIG_GPIO_CDEV`` off): it writes the exported line's ``value`` file. Other kinds
(``simulated``) come from installed adapter packages (:mod:`v2g_gateway.adapters`). Every
driver satisfies ``v2g_gateway.control.ports.Contactor`` and reads the line back, so a stuck
driver shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection
from v2g_gateway.adapters import ContactorKind

__all__ = ["ContactorSection", "GpioLineRequest", "GpiodContactor", "SysfsGpioContactor"]

_SYSFS_KEYS = frozenset({"gpio_value_path"})
_GPIOD_KEYS = frozenset({"chip", "line_offset"})


class ContactorSection(ConfigSection):
    """``kind = "gpiod"`` (a relay on a GPIO line of ``chip``), ``"gpio_sysfs"`` (the same
    through sysfs) or an installed kind (``"simulated"``: v2g-sim)."""

    kind: ContactorKind = "gpiod"
    chip: Path = Path("/dev/gpiochip0")
    line_offset: int = Field(default=17, ge=0)
    gpio_value_path: Path = Path("/sys/class/gpio/gpio17/value")
    active_low: bool = False

    @model_validator(mode="after")
    def _keys_of_this_kind(self) -> ContactorSection:
        # A file written for one driver must not silently drive another pin with defaults.
        other = {"gpiod": _SYSFS_KEYS, "gpio_sysfs": _GPIOD_KEYS}.get(self.kind, frozenset())
        fields = type(self).model_fields
        stray = sorted(k for k in other if getattr(self, k) != fields[k].default)
        if stray:
            raise ValueError(f"{', '.join(stray)} do(es) not apply to kind = {self.kind!r}")
        return self


class GpioLineRequest(Protocol):
    """What :class:`GpiodContactor` needs of a ``gpiod.LineRequest`` (libgpiod 2.x)."""

    def set_value(self, line: int, value: Any) -> None: ...

    def get_value(self, line: int) -> Any: ...

    def release(self) -> None: ...


class GpiodContactor:
    """A relay on one line of a GPIO character device, given the line ``request`` (an output
    request holding ``offset``, made by the wiring: ``v2g_gateway.hardware``). Closed = line
    active; the kernel maps active to the pin level (``active_low`` is part of the request)."""

    def __init__(self, request: GpioLineRequest, offset: int) -> None:
        from gpiod.line import Value  # the binding's values; only a gpiod unit imports it

        self._request = request
        self._offset = offset
        self._active = Value.ACTIVE
        self._inactive = Value.INACTIVE

    @property
    def closed(self) -> bool:
        return bool(self._request.get_value(self._offset) == self._active)

    def open(self) -> None:
        self._request.set_value(self._offset, self._inactive)

    def close(self) -> None:
        self._request.set_value(self._offset, self._active)

    def release(self) -> None:
        """Open the relay, then give the line back to the kernel."""
        try:
            self.open()
        finally:
            self._request.release()


class SysfsGpioContactor:
    """A relay on a GPIO line through its sysfs ``value`` file (exported and set to output by
    the installer); ``closed`` reads the line back."""

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
