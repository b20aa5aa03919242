"""ChargingProfile dicts for VPP dispatch (snake_case, the ``ocpp`` library's keys).

Pure: the runner decides values, these functions only shape them. The station's negotiated
subprotocol decides the shape: OCPP 2.1 gets ``operationMode``/``setpoint``/``dischargeLimit``
and the offline rules (``maxOfflineDuration``, ``invalidAfterOfflineDuration``); OCPP 2.0.1
has none of these (its schema refuses them), so a 2.0.1 station gets a charging ``limit`` per
period only, never below 0 W: it is dispatched charge-only (``vpp_core.dispatch.eligibility``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vpp_core.dispatch.eligibility import OCPP_201

__all__ = [
    "ProfileSpec",
    "dispatch_profile",
    "resume_profile",
    "schedule_update",
    "window_profile",
]

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
    #: The station's subprotocol; ``ocpp2.0.1`` gets the 2.0.1 shape (``kind`` Absolute).
    ocpp_version: str | None = None

    def __post_init__(self) -> None:
        if self.ocpp201 and self.kind != "Absolute":
            raise ValueError("OCPP 2.0.1 has no Dynamic profiles")

    @property
    def ocpp201(self) -> bool:
        return self.ocpp_version == OCPP_201


@functools.lru_cache(maxsize=256)
def _iso(t: datetime) -> str:
    # Cached: a fan-out shapes thousands of profiles over the same window.
    return t.isoformat().replace("+00:00", "Z")


def _period(setpoint_w: float, *, legacy: bool, ocpp201: bool) -> dict[str, Any]:
    if ocpp201:
        if setpoint_w < 0:
            raise ValueError(f"an OCPP 2.0.1 station cannot discharge ({setpoint_w} W)")
        # 2.0.1: a charging limit only (demand response: reduced or deferred charging)
        return {"start_period": 0, "limit": float(setpoint_w)}
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
    period = _period(setpoint_w, legacy=spec.legacy_negative_limit, ocpp201=spec.ocpp201)
    return window_profile(spec, period)


def window_profile(spec: ProfileSpec, period: dict[str, Any]) -> dict[str, Any]:
    """The TxProfile applying one schedule ``period`` over the spec's window (the frequency
    services' LocalFrequency period travels in the same envelope as a dispatch setpoint)."""
    duration_s = round((spec.valid_to - spec.valid_from).total_seconds())
    schedule: dict[str, Any] = {
        "id": spec.profile_id,
        "charging_rate_unit": "W",
        "duration": max(duration_s, 1),
        "charging_schedule_period": [period],
    }
    if spec.kind == "Absolute":
        schedule["start_schedule"] = _iso(spec.valid_from)
    profile: dict[str, Any] = {
        "id": spec.profile_id,
        "stack_level": spec.stack_level,
        "charging_profile_purpose": PURPOSE,
        "charging_profile_kind": spec.kind,
        "transaction_id": spec.transaction_id,
        "valid_from": _iso(spec.valid_from),
        "valid_to": _iso(spec.valid_to),
        "charging_schedule": [schedule],
    }
    if not spec.ocpp201:
        profile["max_offline_duration"] = spec.max_offline_duration_s
        # a station offline longer than that drops the discharge for good: after a core
        # crash and restart no stale profile may resume discharging without the core's say
        profile["invalid_after_offline_duration"] = True
    return profile


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
    if not spec.legacy_negative_limit and not spec.ocpp201:
        period["operation_mode"] = "ChargingOnly"
    offline = {} if spec.ocpp201 else {"max_offline_duration": spec.max_offline_duration_s}
    return {
        "id": spec.profile_id,
        "stack_level": spec.stack_level,
        "charging_profile_purpose": PURPOSE,
        "charging_profile_kind": "Absolute",
        "transaction_id": spec.transaction_id,
        "valid_from": _iso(start),
        **offline,
        "charging_schedule": [
            {
                "id": spec.profile_id,
                "charging_rate_unit": "W",
                "start_schedule": _iso(start),
                "charging_schedule_period": [period],
            }
        ],
    }
