"""The fleet's records.

:class:`StationEntry` (the registry) and :class:`Sample` are frozen values. The live records
(:class:`StationLive`, :class:`EvseLive`, :class:`SessionLive`) are deliberately mutable:
they are the authoritative real-time state, owned by one event loop, updated in place on
every message (thousands per second) and handed out only as frozen snapshots
(:class:`~vpp_core.dispatch.ports.SessionState`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from vpp_core.dispatch.ports import SessionState

__all__ = [
    "EvseLive",
    "Sample",
    "SessionLive",
    "StationEntry",
    "StationLive",
    "V2xLimits",
]


@dataclass(frozen=True, slots=True)
class StationEntry:
    """A registered station: how it must authenticate and where it sits."""

    station_id: str
    security_profile: int  # 1 (lab only), 2 (TLS + Basic auth) or 3 (mutual TLS)
    enabled: bool
    site: str
    region: str
    password_hash: str | None  # fleet/registry.py: hmac-sha256$salt$digest (profiles 1, 2)


SampleTuple = tuple[datetime, float | None, float | None, float | None, float | None]


class Sample(NamedTuple):
    """One point of a session's power/energy time series (a tuple: built per message)."""

    at: datetime
    power_w: float | None
    energy_import_wh: float | None
    energy_export_wh: float | None
    soc_pct: float | None


@dataclass(frozen=True, slots=True)
class V2xLimits:
    """What the EV declared in ``NotifyEVChargingNeeds`` (discharge powers are magnitudes)."""

    max_charge_w: float = 0.0
    min_charge_w: float = 0.0
    max_discharge_w: float = 0.0
    min_discharge_w: float = 0.0
    target_soc_pct: float | None = None
    departure: datetime | None = None
    ev_min_v2x_energy_wh: float | None = None
    ev_max_v2x_energy_wh: float | None = None
    ev_target_energy_wh: float | None = None
    ev_min_energy_wh: float | None = None
    ev_max_energy_wh: float | None = None
    battery_capacity_wh: float | None = None
    control_mode: str | None = None
    #: ``requestedEnergyTransfer``: only a bidirectional (BPT) mode may be discharged.
    requested_energy_transfer: str | None = None
    received_at: datetime | None = None


@dataclass(slots=True)
class StationLive:
    station_id: str
    connected: bool = False
    last_seen: datetime | None = None
    subprotocol: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    boot_reason: str | None = None
    booted_at: datetime | None = None
    #: Connections accepted since the core started (memory only): a reconnect changes it.
    connections: int = 0


@dataclass(slots=True)
class EvseLive:
    station_id: str
    evse_id: int
    connector_status: str | None = None
    plugged: bool = False
    updated_at: datetime | None = None
    limit_source: str | None = None
    limit_grid_critical: bool | None = None
    limit_schedule: list[dict[str, Any]] | None = None
    limit_at: datetime | None = None


@dataclass(slots=True)
class SessionLive:
    """One transaction on one EVSE; ``active`` until ``TransactionEvent(Ended)``."""

    station_id: str
    transaction_id: str
    evse_id: int
    started_at: datetime
    active: bool = True
    plugged: bool = True
    ended_at: datetime | None = None
    stopped_reason: str | None = None
    charging_state: str | None = None
    seq_no: int | None = None
    soc_pct: float | None = None
    soc_at: datetime | None = None
    limits: V2xLimits = field(default_factory=V2xLimits)
    present_power_w: float = 0.0
    energy_import_wh: float = 0.0
    energy_export_wh: float = 0.0
    meter_at: datetime | None = None
    last_seen: datetime | None = None
    #: The modes of the last NotifyAllowedEnergyTransfer the station accepted (None: none).
    allowed_energy_transfer: tuple[str, ...] | None = None
    #: NotifyPriorityCharging ``activated``: the EV takes part in no dispatch meanwhile.
    priority_charging: bool = False
    #: The recent series as plain tuples in :class:`Sample` order: an exact tuple of
    #: untracked values is dropped from the garbage collector's lists, a NamedTuple is not
    #: (at 15,000 sessions x 30 samples that difference is a 300 ms gen-1 pause).
    samples: deque[SampleTuple] = field(default_factory=deque)

    def series(self) -> list[Sample]:
        """The in-memory power/energy series, oldest first."""
        return [Sample(*values) for values in self.samples]

    def snapshot(
        self,
        *,
        site: str,
        region: str,
        station_connected: bool,
        station_connection: int = 0,
        ocpp_version: str | None = None,
    ) -> SessionState:
        lim = self.limits
        return SessionState(
            station_id=self.station_id,
            evse_id=self.evse_id,
            transaction_id=self.transaction_id,
            site=site,
            region=region,
            started_at=self.started_at,
            connected=station_connected and self.plugged,
            soc_pct=self.soc_pct,
            soc_at=self.soc_at,
            max_discharge_w=lim.max_discharge_w,
            min_discharge_w=lim.min_discharge_w,
            max_charge_w=lim.max_charge_w,
            min_charge_w=lim.min_charge_w,
            target_soc_pct=lim.target_soc_pct,
            departure=lim.departure,
            ev_min_v2x_energy_wh=lim.ev_min_v2x_energy_wh,
            ev_target_energy_wh=lim.ev_target_energy_wh,
            battery_capacity_wh=lim.battery_capacity_wh,
            present_power_w=self.present_power_w,
            energy_import_wh=self.energy_import_wh,
            energy_export_wh=self.energy_export_wh,
            last_seen=self.last_seen or self.started_at,
            ev_max_v2x_energy_wh=lim.ev_max_v2x_energy_wh,
            meter_at=self.meter_at,
            station_connection=station_connection,
            ocpp_version=ocpp_version,
            requested_energy_transfer=lim.requested_energy_transfer,
            allowed_energy_transfer=self.allowed_energy_transfer,
            priority_charging=self.priority_charging,
            needs_at=lim.received_at,
        )
