"""Live records <-> database rows (pure functions; the column names are the schema's).

One row shape per table: each table's rows come from exactly one builder here, and every
builder returns every column of its table (``None`` where a value is absent). A batch is
written with one ``executemany`` per table, which compiles its statement from the first
row's keys: rows of two shapes in one batch (a failed command logged with ``error``, an
answered one with ``status``/``reason``) failed as a whole and, retried, stopped every
later write (issue 13 item 2). ``tests/unit/core/fleet/test_fleet_rows.py`` checks each
builder against its table.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from vpp_core.fleet.model import (
    EvseLive,
    SampleTuple,
    SessionLive,
    StationEntry,
    StationLive,
    V2xLimits,
)

__all__ = [
    "command_row",
    "entry_from_row",
    "entry_row",
    "evse_from_row",
    "evse_row",
    "limits_from_json",
    "limits_json",
    "profile_row",
    "sample_row",
    "security_event_row",
    "session_from_row",
    "session_row",
    "station_from_row",
    "station_row",
]

Row = dict[str, Any]
_LIMIT_COLUMNS = (
    "max_charge_w",
    "min_charge_w",
    "max_discharge_w",
    "min_discharge_w",
    "target_soc_pct",
    "departure",
    "ev_min_v2x_energy_wh",
    "ev_max_v2x_energy_wh",
    "ev_target_energy_wh",
    "ev_min_energy_wh",
    "ev_max_energy_wh",
    "battery_capacity_wh",
    "control_mode",
    "requested_energy_transfer",
)


def entry_row(entry: StationEntry, *, created_at: datetime, revision: int) -> Row:
    return {**asdict(entry), "created_at": created_at, "revision": revision}


def entry_from_row(row: Any) -> StationEntry:
    return StationEntry(
        station_id=row.station_id,
        security_profile=row.security_profile,
        enabled=bool(row.enabled),
        site=row.site,
        region=row.region,
        password_hash=row.password_hash,
    )


#: ``connections`` counts this process's connections: memory only, not a column.
_STATION_FIELDS = tuple(f.name for f in fields(StationLive) if f.name != "connections")
_EVSE_FIELDS = tuple(f.name for f in fields(EvseLive))
_SESSION_FIELDS = tuple(f.name for f in fields(SessionLive) if f.name not in ("limits", "samples"))


def station_row(live: StationLive) -> Row:
    return {name: getattr(live, name) for name in _STATION_FIELDS}


def station_from_row(row: Any) -> StationLive:
    live = StationLive(**{name: getattr(row, name) for name in _STATION_FIELDS})
    live.connected = False  # nobody is connected to a core that just started
    return live


def limits_json(limits: V2xLimits | None) -> dict[str, Any] | None:
    if limits is None:
        return None
    out = asdict(limits)
    for key in ("departure", "received_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    return out


def limits_from_json(data: dict[str, Any] | None) -> V2xLimits | None:
    if data is None:
        return None
    values = dict(data)
    for key in ("departure", "received_at"):
        if values.get(key) is not None:
            values[key] = datetime.fromisoformat(values[key])
    return V2xLimits(**values)


def evse_row(live: EvseLive, *, pending_needs: V2xLimits | None) -> Row:
    row = {name: getattr(live, name) for name in _EVSE_FIELDS}
    row["pending_needs"] = limits_json(pending_needs)
    return row


def evse_from_row(row: Any) -> tuple[EvseLive, V2xLimits | None]:
    live = EvseLive(**{f.name: getattr(row, f.name) for f in fields(EvseLive)})
    return live, limits_from_json(row.pending_needs)


def session_row(live: SessionLive) -> Row:
    row = {name: getattr(live, name) for name in _SESSION_FIELDS}
    limits = live.limits
    for name in _LIMIT_COLUMNS:
        row[name] = getattr(limits, name)
    row["needs_at"] = limits.received_at
    return row


def session_from_row(row: Any, *, samples_in_memory: int) -> SessionLive:
    limits = V2xLimits(
        **{name: getattr(row, name) for name in _LIMIT_COLUMNS}, received_at=row.needs_at
    )
    skip = ("limits", "samples")
    values = {f.name: getattr(row, f.name) for f in fields(SessionLive) if f.name not in skip}
    allowed = values["allowed_energy_transfer"]  # a JSON list
    values["allowed_energy_transfer"] = None if allowed is None else tuple(allowed)
    values["priority_charging"] = bool(values["priority_charging"])
    return SessionLive(**values, limits=limits, samples=deque(maxlen=samples_in_memory))


def sample_row(station_id: str, transaction_id: str, sample: SampleTuple) -> Row:
    at, power_w, import_wh, export_wh, soc_pct = sample
    return {
        "station_id": station_id,
        "transaction_id": transaction_id,
        "sampled_at": at,
        "power_w": power_w,
        "energy_import_wh": import_wh,
        "energy_export_wh": export_wh,
        "soc_pct": soc_pct,
    }


def command_row(
    *,
    station_id: str,
    action: str,
    request: Any,
    sent_at: datetime,
    status: str | None = None,
    reason: str | None = None,
    error: str | None = None,
    latency_s: float | None = None,
) -> Row:
    """A ``command_log`` row: answered (``status``, ``reason``) or failed (``error``)."""
    return {
        "station_id": station_id,
        "action": action,
        "request": request,
        "status": status,
        "reason": reason,
        "error": error,
        "sent_at": sent_at,
        "latency_s": latency_s,
    }


def security_event_row(
    *,
    station_id: str,
    event_type: str,
    tech_info: str | None,
    occurred_at: datetime,
    received_at: datetime,
) -> Row:
    return {
        "station_id": station_id,
        "event_type": event_type,
        "tech_info": tech_info,
        "occurred_at": occurred_at,
        "received_at": received_at,
    }


def profile_row(
    station_id: str, evse_id: int, source: str, profile: dict[str, Any], *, reported_at: datetime
) -> Row:
    """A ``reported_profiles`` row from a reported (snake_case) ``ChargingProfileType``."""
    return {
        "station_id": station_id,
        "evse_id": evse_id,
        "profile_id": int(profile["id"]),
        "source": source,
        "purpose": profile.get("charging_profile_purpose"),
        "stack_level": profile.get("stack_level"),
        "profile": profile,
        "reported_at": reported_at,
    }
