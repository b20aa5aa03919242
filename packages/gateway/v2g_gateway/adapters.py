"""Device adapters by kind: which code opens the contactor, the power sensor's i2c bus and the
EV link that ``gateway.toml`` names (``[contactor] kind``, ``[power_sensor] kind``,
``[ev_link] kind``), and what drives the power stage to an operating point for
``calibrate-sensors`` (``operating_point``: no built-in kind, a technician sets the point).

Built-in kinds are listed here by import path and imported only when configured, so a field
unit imports gpiod or the sysfs driver, never both and never the simulator. Every other kind
comes from an installed distribution through the entry-point group ``v2g_gateway.adapters``:
the entry point's name is ``<section>.<kind>`` and its object a factory of that section's
port (the protocols below). v2g-sim registers ``simulated`` for all three; an ISO 15118 SECC
registers ``ev_link.<its kind>``::

    [project.entry-points."v2g_gateway.adapters"]
    "ev_link.iso15118" = "my_secc.adapter:open_ev_link"

The gateway does not depend on any provider: a kind whose provider is not installed is a
configuration error naming the key (``--check-config`` reports it), not an ImportError at
start-up. Lookups of entry points (importlib.metadata) happen only for non-built-in kinds.
"""

from __future__ import annotations

import contextlib
import importlib
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

from pydantic import AfterValidator

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from v2g_gateway.config import GatewayConfig
    from v2g_gateway.control.ports import Contactor, EvLink
    from v2g_gateway.devices import ControlProcessConfig
    from v2g_gateway.hw.power_sensor.driver import I2cBus

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterError",
    "ContactorFactory",
    "ContactorKind",
    "EvLinkFactory",
    "EvLinkKind",
    "I2cBusFactory",
    "OperatingPointDriver",
    "OperatingPointFactory",
    "PowerSensorKind",
    "check_kind",
    "contactor_factory",
    "ev_link_factory",
    "i2c_bus_factory",
    "operating_point_factory",
]

ENTRY_POINT_GROUP = "v2g_gateway.adapters"

#: section -> kind -> "module:attribute" of the factory. Imported only when configured.
BUILTIN: dict[str, dict[str, str]] = {
    "contactor": {
        "gpiod": "v2g_gateway.hardware:open_gpiod_contactor",
        "gpio_sysfs": "v2g_gateway.hardware:open_sysfs_contactor",
    },
    "power_sensor": {"ina228": "v2g_gateway.hardware:open_smbus"},
    "ev_link": {"none": "v2g_gateway.adapters:no_ev_link"},
    "operating_point": {},
}

#: Kinds known to come from a distribution that is not part of the gateway, for the error.
KNOWN_PROVIDERS = {"simulated": "v2g-sim (the simulator; a charger does not install it)"}


class ContactorFactory(Protocol):
    """Opens the contactor named by ``config.contactor``; registers its release on ``stack``."""

    def __call__(
        self, config: ControlProcessConfig, stack: contextlib.ExitStack, /
    ) -> Contactor: ...


class I2cBusFactory(Protocol):
    """Opens the i2c bus the INA228 named by ``config.power_sensor`` sits on."""

    def __call__(self, config: ControlProcessConfig, stack: contextlib.ExitStack, /) -> I2cBus: ...


class EvLinkFactory(Protocol):
    """The EV communication controller named by ``config.ev_link`` (``None``: no V2X data, so
    the station never allows discharge). Called once by the supervisor at start-up; the link's
    ``read_charging_needs`` is awaited by the station on its own schedule."""

    def __call__(self, config: GatewayConfig, /) -> EvLink | None: ...


class OperatingPointDriver(Protocol):
    """Sets the power stage to an operating point and returns once it is steady."""

    def drive_to(self, power_w: float) -> None: ...


class OperatingPointFactory(Protocol):
    """Opens what drives the power stage of ``config.simulator`` (``calibrate-sensors``)."""

    def __call__(
        self, config: ControlProcessConfig, stack: contextlib.ExitStack, /
    ) -> OperatingPointDriver: ...


class AdapterError(Exception):
    """A configured kind cannot be provided (not installed, or its provider is broken)."""


def no_ev_link(config: GatewayConfig) -> EvLink | None:
    """``[ev_link] kind = "none"``: no V2X data."""
    return None


def _entry_points(section: str, kind: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points  # only for kinds that are not built in

    return list(entry_points(group=ENTRY_POINT_GROUP, name=f"{section}.{kind}"))


def _unavailable(section: str, kind: str) -> str:
    built_in = ", ".join(repr(k) for k in BUILTIN[section]) or "none"
    reason = (
        f"kind {kind!r} is not available here: built in are {built_in}; other kinds come "
        f"from installed packages (entry point '{section}.{kind}' in group {ENTRY_POINT_GROUP})"
    )
    provider = KNOWN_PROVIDERS.get(kind)
    return reason + (f"; {kind!r} is provided by {provider}" if provider else "")


def check_kind(section: str, kind: str) -> str:
    """For config validators: ``kind`` if some code provides it, else ``ValueError``."""
    if kind in BUILTIN[section]:
        return kind
    found = _entry_points(section, kind)
    if not found:
        raise ValueError(_unavailable(section, kind))
    if len({ep.value for ep in found}) > 1:
        values = ", ".join(sorted(ep.value for ep in found))
        raise ValueError(f"kind {kind!r} is provided twice ({values}): uninstall one")
    return kind


#: Config field types: a ``kind`` some installed code provides (else a ValueError naming why).
ContactorKind = Annotated[str, AfterValidator(partial(check_kind, "contactor"))]
PowerSensorKind = Annotated[str, AfterValidator(partial(check_kind, "power_sensor"))]
EvLinkKind = Annotated[str, AfterValidator(partial(check_kind, "ev_link"))]


def _load(section: str, kind: str) -> Any:
    """Import the factory of ``kind``; :class:`AdapterError` when that fails."""
    try:
        path = BUILTIN[section].get(kind)
        if path is not None:
            module, _, attribute = path.partition(":")
            return getattr(importlib.import_module(module), attribute)
        found = _entry_points(section, kind)
        if not found:
            raise AdapterError(f"{section}.kind: {_unavailable(section, kind)}")
        return found[0].load()
    except (ImportError, AttributeError) as exc:
        raise AdapterError(f"{section}.kind = {kind!r}: cannot load its adapter: {exc}") from exc


def contactor_factory(kind: str) -> ContactorFactory:
    return cast("ContactorFactory", _load("contactor", kind))


def i2c_bus_factory(kind: str) -> I2cBusFactory:
    return cast("I2cBusFactory", _load("power_sensor", kind))


def ev_link_factory(kind: str) -> EvLinkFactory:
    return cast("EvLinkFactory", _load("ev_link", kind))


def operating_point_factory(kind: str) -> OperatingPointFactory:
    return cast("OperatingPointFactory", _load("operating_point", kind))
