"""What the dispatch engine needs from the rest of the core: a fleet view and station commands.

``vpp_core.fleet`` implements :class:`FleetView`; ``vpp_core.csms`` implements
:class:`StationCommands`. Dispatch imports neither (nor websockets, nor the database).
Sign convention: positive power into the EV, negative out of it. Discharge/charge *limits*
reported by EVs are magnitudes (>= 0).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from vpp_core.dispatch.eligibility import charge_only_reason, priority_reason
from vpp_core.dispatch.model import SessionKey

__all__ = [
    "PLANNER_FIELDS",
    "CommandResult",
    "EndedSession",
    "FleetView",
    "SessionState",
    "StationCommands",
]

#: The numbers the planner reads from every session, in the order of ``planner_row``;
#: ``departure_ts`` is the departure as POSIX seconds; ``connected``, ``charge_only`` and
#: ``not_dispatchable`` 1.0 or 0.0 (the reasons are the attributes of the same names).
PLANNER_FIELDS = (
    "soc_pct",
    "battery_capacity_wh",
    "min_soc_pct",
    "ev_min_v2x_energy_wh",
    "ev_max_v2x_energy_wh",
    "ev_target_energy_wh",
    "target_soc_pct",
    "max_charge_w",
    "min_charge_w",
    "max_discharge_w",
    "min_discharge_w",
    "departure_ts",
    "connected",
    "charge_only",
    "not_dispatchable",
)
_PACK = struct.Struct(f"<{len(PLANNER_FIELDS)}d").pack


@dataclass(frozen=True, slots=True)
class SessionState:
    """One active charging session as the dispatcher sees it."""

    station_id: str
    evse_id: int
    transaction_id: str
    site: str
    region: str
    started_at: datetime
    connected: bool  # station online and EV plugged in
    soc_pct: float | None
    soc_at: datetime | None
    max_discharge_w: float  # from V2X charging parameters, magnitude
    min_discharge_w: float
    max_charge_w: float
    min_charge_w: float
    target_soc_pct: float | None
    departure: datetime | None
    # OCPP 2.1 V2XChargingParameters, relative to the SoC when reported (ISO 15118-20 sense):
    # evMinV2XEnergyRequest: Wh to reach the V2X minimum SoC; negative = that much may be
    # discharged. evTargetEnergyRequest: Wh still needed to reach the departure target.
    ev_min_v2x_energy_wh: float | None
    ev_target_energy_wh: float | None
    battery_capacity_wh: float | None
    present_power_w: float
    energy_import_wh: float
    energy_export_wh: float
    last_seen: datetime
    # Added by dispatch (optional, defaulted so existing constructors keep working):
    ev_max_v2x_energy_wh: float | None = None  # evMaxV2XEnergyRequest: Wh of room to charge
    min_soc_pct: float | None = None  # the EV's stated minimum SoC (e.g. Display.MinimumSOC)
    #: When the energy registers and present power were sampled (the meter value's own
    #: timestamp): registers lag real time by up to one sampling interval.
    meter_at: datetime | None = None
    #: Which of the station's connections this was seen on (any number that changes when the
    #: station reconnects): what was read over an earlier connection may be stale.
    station_connection: int = 0
    #: The station's negotiated subprotocol (``ocpp2.1``, ``ocpp2.0.1``; None read as 2.1):
    #: it decides the profile shape, and 2.0.1 stations are charge-only.
    ocpp_version: str | None = None
    #: NotifyEVChargingNeeds ``requestedEnergyTransfer`` (None: no needs reported).
    requested_energy_transfer: str | None = None
    #: The modes of the last NotifyAllowedEnergyTransfer the station accepted (None: none sent).
    allowed_energy_transfer: tuple[str, ...] | None = None
    #: NotifyPriorityCharging ``activated``: the EV left every dispatch.
    priority_charging: bool = False
    #: When the EV's charging needs (``NotifyEVChargingNeeds``) arrived; None = not yet: until
    #: then its limits read 0 W and a plan leaves it out.
    needs_at: datetime | None = None
    # Derived once per snapshot (the fleet caches snapshots until a session changes), so that a
    # plan over 100k sessions joins bytes instead of reading 14 attributes of each session.
    key: SessionKey = field(init=False, repr=False, compare=False)
    #: ``PLANNER_FIELDS`` as little-endian float64 (None -> nan).
    planner_row: bytes = field(init=False, repr=False, compare=False)
    #: Why it may not discharge (None: it may), see ``vpp_core.dispatch.eligibility``.
    charge_only: str | None = field(init=False, repr=False, compare=False)
    #: Why it may take part in no dispatch at all (None: it may).
    not_dispatchable: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", SessionKey(self.station_id, self.evse_id, self.transaction_id)
        )
        charge_only = charge_only_reason(
            ocpp_version=self.ocpp_version,
            requested_energy_transfer=self.requested_energy_transfer,
            allowed_energy_transfer=self.allowed_energy_transfer,
        )
        not_dispatchable = priority_reason(self.priority_charging)
        object.__setattr__(self, "charge_only", charge_only)
        object.__setattr__(self, "not_dispatchable", not_dispatchable)
        departure_ts = self.departure.timestamp() if self.departure is not None else None
        values = (
            self.soc_pct,
            self.battery_capacity_wh,
            self.min_soc_pct,
            self.ev_min_v2x_energy_wh,
            self.ev_max_v2x_energy_wh,
            self.ev_target_energy_wh,
            self.target_soc_pct,
            self.max_charge_w,
            self.min_charge_w,
            self.max_discharge_w,
            self.min_discharge_w,
            departure_ts,
            1.0 if self.connected else 0.0,
            0.0 if charge_only is None else 1.0,
            0.0 if not_dispatchable is None else 1.0,
        )
        row = _PACK(*(math.nan if v is None else v for v in values))
        object.__setattr__(self, "planner_row", row)


class EndedSession(NamedTuple):
    """A session's last register reading, taken from ``TransactionEvent(Ended)`` when it
    carried one: the energy it moved up to its end, not only up to its last periodic sample."""

    ended_at: datetime | None
    energy_import_wh: float
    energy_export_wh: float
    meter_at: datetime | None


class FleetView(Protocol):
    """Read access to the live fleet (memory, authoritative for real time)."""

    def sessions(self) -> Sequence[SessionState]: ...

    def ended_session(self, key: SessionKey) -> EndedSession | None:
        """The last registers of a session that has ended (None: unknown or still active)."""
        ...


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A station's answer: ``status`` is the OCPP status string (``Accepted``, ``Rejected``…).

    A CALLERROR or timeout is raised as an exception by the implementation, not returned.
    """

    status: str
    reason: str | None = None


class StationCommands(Protocol):
    """Commands to stations. Profiles are OCPP ``ChargingProfileType`` dicts in snake_case
    (the ``ocpp`` library's convention); the CSMS adapter puts them on the wire."""

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: Mapping[str, Any]
    ) -> CommandResult: ...

    async def clear_charging_profile(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> CommandResult: ...

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, schedule_update: Mapping[str, Any]
    ) -> CommandResult: ...

    async def afrr_signal(
        self, station_id: str, *, timestamp: datetime, signal: int
    ) -> CommandResult:
        """OCPP 2.1 AFRRSignalRequest (the station maps ``signal`` through the
        ``v2xSignalWattCurve`` of its CentralFrequency periods from ``timestamp`` on)."""
        ...

    async def get_charging_profiles(
        self,
        station_id: str,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> list[dict[str, Any]]: ...
