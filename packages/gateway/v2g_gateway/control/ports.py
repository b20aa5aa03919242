"""What the control loop needs from the hardware: narrow, typed, transport-free interfaces.

The hardware layer (``v2g_gateway.hw``) and the simulator implement these; the control loop
depends only on this module. Sign convention: positive power flows into the EV (charging),
negative out of it (discharge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "Contactor",
    "EvChargingNeeds",
    "EvEventSource",
    "EvLink",
    "EvSession",
    "EvseTargets",
    "PowerSensor",
    "PowerStage",
    "StageMeasurement",
    "StageRatings",
]


@dataclass(frozen=True, slots=True)
class StageRatings:
    """Nameplate limits of the power stage, as magnitudes in watts (both >= 0)."""

    max_charge_w: float
    max_discharge_w: float


@dataclass(frozen=True, slots=True)
class StageMeasurement:
    """One reading of the power stage.

    ``faults`` holds stable event codes (``GROUND_FAULT``, ``OVER_TEMP``, ``DC_OVER_VOLTAGE``,
    ``AC_OVER_VOLTAGE``, ``AC_UNDER_VOLTAGE``, ``MODULE_FAULT``); empty when healthy.
    ``soc_pct`` is ``None`` when no EV reports one (nothing plugged in).
    """

    power_w: float
    soc_pct: float | None
    grid_freq_hz: float
    grid_voltage_v: float
    ev_connected: bool
    energy_import_wh: float
    energy_export_wh: float
    faults: frozenset[str] = field(default_factory=frozenset)


class PowerStage(Protocol):
    """A bidirectional power module (SunSpec DER over Modbus RTU, or the simulator)."""

    async def read_ratings(self) -> StageRatings: ...

    async def read_measurement(self) -> StageMeasurement: ...

    async def write_setpoint(self, power_w: float) -> None:
        """Command a signed active-power setpoint in watts."""

    async def set_energized(self, energized: bool) -> None:
        """Start or stop energizing the output (SunSpec 703 ``ES``)."""

    async def program_revert(self, *, timeout_s: float, revert_power_w: float = 0.0) -> None:
        """Arm the module-side revert timer: with no new setpoint for ``timeout_s`` the
        module itself goes to ``revert_power_w`` (the safety net for a dead daemon)."""


class Contactor(Protocol):
    """The local output contactor relay, independent of the power module's own stop."""

    @property
    def closed(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class PowerSensor(Protocol):
    """An independent power meter (INA228 on i2c) used to cross-check the module."""

    def read_power_w(self) -> float:
        """Calibrated signed power in watts."""


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    """What the plugged-in EV declares (ISO 15118-20 BPT), reported to the CSMS as V2X charging
    parameters. Powers are magnitudes in watts (>= 0); energies in Wh."""

    ev_id: str
    battery_capacity_wh: float
    max_charge_w: float
    min_charge_w: float
    max_discharge_w: float
    min_discharge_w: float
    ev_target_energy_wh: float | None
    ev_min_energy_wh: float | None
    ev_max_energy_wh: float | None
    ev_min_v2x_energy_wh: float | None
    ev_max_v2x_energy_wh: float | None
    target_soc_pct: float | None
    min_soc_pct: float | None
    departure: datetime | None
    bidirectional: bool = True


class EvLink(Protocol):
    """The EV communication controller (ISO 15118 SECC, or the simulator's stand-in), chosen
    by ``[ev_link] kind`` and built by its adapter's factory (``v2g_gateway.adapters``)."""

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        """The plugged-in EV's declared needs, or ``None`` when no EV is connected. Raises
        when the controller cannot be reached; the station then reports no V2X data (no
        discharge) until it answers again."""


@dataclass(frozen=True, slots=True)
class EvseTargets:
    """What the station wants of the EV this tick: ``target_w`` the setpoint in force
    (signed), within ``max_charge_w`` / ``max_discharge_w`` (the limits the control loop got,
    magnitudes); ``present_w`` what the power stage measures; ``stop`` no energy transfer
    (not allowed to deliver, tripped, fail-safe); ``emergency`` a trip (the contactor opened at
    once)."""

    target_w: float
    max_charge_w: float
    max_discharge_w: float
    present_w: float
    stop: bool
    emergency: bool = False


@runtime_checkable
class EvSession(Protocol):
    """An EV link that talks to the EV during the session (ISO 15118 SECC): the station runs
    it next to itself, tells it its targets each tick and meters the EV's own SoC."""

    async def run(self) -> None:
        """Until cancelled (supervises whatever speaks to the EV)."""

    def follow(self, targets: EvseTargets) -> None: ...

    def soc_pct(self) -> float | None:
        """The EV's own present SoC (None: not reported)."""

    def hold(self) -> str | None:
        """Why no energy may flow now: an event code (``EV_COMM_TIMEOUT``) or the session's
        state (not yet, or no longer, in its charge loop); None while the EV is in its charge
        loop."""


@runtime_checkable
class EvEventSource(Protocol):
    """An EV link that raises the shared event codes (``EV_COMM_TIMEOUT``) itself; the daemon
    hands it the uplink's ``report(code, detail)`` so the core hears of them."""

    def report_events_to(self, report: Callable[[str, dict[str, str]], None]) -> None: ...
