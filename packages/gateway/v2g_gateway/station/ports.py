"""What the station needs from the rest of the gateway: the control loop's channel, the EV
link and a clock. The daemon passes the real ones (``v2g_gateway.control.channel``,
the ISO 15118 stand-in, :class:`SystemClock`); tests pass scripted ones."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from v2g_gateway.control.channel import SetpointLease
from v2g_gateway.control.ports import EvChargingNeeds, EvLink

__all__ = [
    "ControlPort",
    "ControlView",
    "EvChargingNeeds",
    "EvLink",
    "SetpointLease",
    "StationClock",
    "SystemClock",
]


class ControlView(Protocol):
    """The parts of the control loop's snapshot the station reads."""

    @property
    def power_w(self) -> float: ...
    @property
    def commanded_w(self) -> float: ...
    @property
    def soc_pct(self) -> float | None: ...
    @property
    def ev_connected(self) -> bool: ...
    @property
    def energy_import_wh(self) -> float: ...
    @property
    def energy_export_wh(self) -> float: ...
    @property
    def contactor_closed(self) -> bool: ...
    @property
    def fail_safe(self) -> bool: ...
    @property
    def trip_code(self) -> str | None: ...
    @property
    def cycles(self) -> int:
        """0 until the control loop has run once (nothing is known yet)."""


class ControlPort(Protocol):
    """The supervisor-side handle of one EVSE's control loop."""

    def grant_lease(self, lease: SetpointLease) -> None: ...

    def mark_csms_contact(self) -> None:
        """Called on every successful exchange with the CSMS, and only then."""

    def set_ev_limits(self, *, max_charge_w: float, max_discharge_w: float) -> None: ...

    def hold_for_ev(self, held: bool) -> None:
        """The EV's ISO 15118 session holds the output open (ramp to 0 W, contactor open)."""

    def snapshot(self) -> ControlView: ...


class StationClock(Protocol):
    """Monotonic seconds for timers, UTC wall time for OCPP timestamps and schedules."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clocks (the only wall-clock read of the station)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)
