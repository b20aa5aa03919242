"""OCPP 2.1 ChargingProfile dicts for VPP dispatch (snake_case, the ``ocpp`` library's keys).

Pure: the runner decides values, these functions only shape them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["ProfileSpec", "dispatch_profile", "resume_profile", "schedule_update"]

PURPOSE = "TxProfile"


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """Everything fixed for one session's VPP profile during a dispatch."""

    profile_id: int
    transaction_id: str
    stack_level: int
    valid_from: datetime
    valid_to: datetime
    max_offline_duration_s: int
    kind: Literal["Absolute", "Dynamic"]
    legacy_negative_limit: bool


@functools.lru_cache(maxsize=256)
def _iso(t: datetime) -> str:
    # Cached: a fan-out shapes thousands of profiles over the same window.
    return t.isoformat().replace("+00:00", "Z")


def _period(setpoint_w: float, *, legacy: bool) -> dict[str, Any]:
    if legacy:
        # Stations that predate operationMode: a signed limit (negative = discharge).
        return {"start_period": 0, "limit": float(setpoint_w)}
    period: dict[str, Any] = {
        "start_period": 0,
        "setpoint": float(setpoint_w),
        "discharge_limit": float(min(setpoint_w, 0.0)),
        "operation_mode": "CentralSetpoint",
    }
    if setpoint_w > 0:
        period["limit"] = float(setpoint_w)
    return period


def dispatch_profile(spec: ProfileSpec, setpoint_w: float) -> dict[str, Any]:
    """The TxProfile holding ``setpoint_w`` (signed) for the whole window."""
    duration_s = round((spec.valid_to - spec.valid_from).total_seconds())
    schedule: dict[str, Any] = {
        "id": spec.profile_id,
        "charging_rate_unit": "W",
        "duration": max(duration_s, 1),
        "charging_schedule_period": [_period(setpoint_w, legacy=spec.legacy_negative_limit)],
    }
    if spec.kind == "Absolute":
        schedule["start_schedule"] = _iso(spec.valid_from)
    return {
        "id": spec.profile_id,
        "stack_level": spec.stack_level,
        "charging_profile_purpose": PURPOSE,
        "charging_profile_kind": spec.kind,
        "transaction_id": spec.transaction_id,
        "valid_from": _iso(spec.valid_from),
        "valid_to": _iso(spec.valid_to),
        "max_offline_duration": spec.max_offline_duration_s,
        # a station offline longer than that drops the discharge for good: after a core
        # crash and restart no stale profile may resume discharging without the core's say
        "invalid_after_offline_duration": True,
        "charging_schedule": [schedule],
    }


def schedule_update(setpoint_w: float) -> dict[str, Any]:
    """UpdateDynamicSchedule's ``schedule_update`` for a new setpoint."""
    update: dict[str, Any] = {
        "setpoint": float(setpoint_w),
        "discharge_limit": float(min(setpoint_w, 0.0)),
    }
    if setpoint_w > 0:
        update["limit"] = float(setpoint_w)
    return update


def resume_profile(spec: ProfileSpec, *, charge_limit_w: float, start: datetime) -> dict[str, Any]:
    """Replaces the VPP profile at the end: charging only, up to ``charge_limit_w`` (>= 0)."""
    period: dict[str, Any] = {"start_period": 0, "limit": float(max(charge_limit_w, 0.0))}
    if not spec.legacy_negative_limit:
        period["operation_mode"] = "ChargingOnly"
    return {
        "id": spec.profile_id,
        "stack_level": spec.stack_level,
        "charging_profile_purpose": PURPOSE,
        "charging_profile_kind": "Absolute",
        "transaction_id": spec.transaction_id,
        "valid_from": _iso(start),
        "max_offline_duration": spec.max_offline_duration_s,
        "charging_schedule": [
            {
                "id": spec.profile_id,
                "charging_rate_unit": "W",
                "start_schedule": _iso(start),
                "charging_schedule_period": [period],
            }
        ],
    }
