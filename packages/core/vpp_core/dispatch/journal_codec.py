"""JSON shapes of the dispatch journal's records (pure: dicts of JSON types, no I/O).

Times are ISO 8601 strings with their offset; keys of sessions are written as their three
parts. A shape read back gives an equal value (``tests/unit/core/dispatch/test_journal_codec.py``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

import numpy as np

from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import Direction, DispatchRequest, Exclusion, SessionKey
from vpp_core.dispatch.planner import DispatchPlan

__all__ = [
    "key_from_json",
    "key_to_json",
    "plan_from_json",
    "plan_to_json",
    "record_from_json",
    "record_to_json",
    "request_from_json",
    "request_to_json",
]

Json = dict[str, Any]
_RECORD_TIMES = ("dropped_at", "ended_at")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def request_to_json(request: DispatchRequest) -> Json:
    return {
        "target_w": request.target_w,
        "start": request.start.isoformat(),
        "duration_s": request.duration_s,
        "algorithm": request.algorithm,
        "headroom": request.headroom,
        "region": request.region,
        "site": request.site,
        "schedule_w": list(request.schedule_w),
        "schedule_step_s": request.schedule_step_s,
        "tracking": request.tracking,
        "tolerance_pct": request.tolerance_pct,
        "max_overshoot_pct": request.max_overshoot_pct,
    }


def request_from_json(data: Json) -> DispatchRequest:
    return DispatchRequest(
        target_w=float(data["target_w"]),
        start=datetime.fromisoformat(data["start"]),
        duration_s=float(data["duration_s"]),
        algorithm=data["algorithm"],
        headroom=float(data["headroom"]),
        region=data["region"],
        site=data["site"],
        schedule_w=tuple(float(v) for v in data["schedule_w"]),
        schedule_step_s=float(data["schedule_step_s"]),
        # journaled before the tracking contract existed: the default contract
        tracking=data.get("tracking", "power"),
        tolerance_pct=float(data.get("tolerance_pct", 0.0)),
        max_overshoot_pct=float(data.get("max_overshoot_pct", 10.0)),
    )


def record_to_json(record: SessionRecord) -> Json:
    """A session record without its key (the journal stores the key in its own columns)."""
    out: Json = {}
    for f in fields(SessionRecord):
        if f.name == "key":
            continue
        value = getattr(record, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    out["notes"] = list(record.notes)
    return out


def record_from_json(key: SessionKey, data: Json) -> SessionRecord:
    values = {f.name: data[f.name] for f in fields(SessionRecord) if f.name in data}
    for name in _RECORD_TIMES:
        values[name] = _time(values.get(name))
    values["notes"] = list(values.get("notes", []))
    return SessionRecord(key=key, **values)


def key_to_json(key: SessionKey) -> list[Any]:
    return [key.station_id, key.evse_id, key.transaction_id]


def key_from_json(data: list[Any]) -> SessionKey:
    return SessionKey(str(data[0]), int(data[1]), str(data[2]))


def plan_to_json(plan: DispatchPlan) -> Json:
    return {
        "direction": plan.direction.value,
        "algorithm": plan.algorithm,
        "requested_w": plan.requested_w,
        "committed_w": plan.committed_w,
        "available_w": plan.available_w,
        "deployable_w": plan.deployable_w,
        "headroom": plan.headroom,
        "duration_s": plan.duration_s,
        "keys": [key_to_json(k) for k in plan.keys],
        "allocation_w": [float(v) for v in plan.allocation_w],
        "shortfall_w": plan.shortfall_w,
        "shortfall_reason": plan.shortfall_reason,
        "excluded": [[*key_to_json(e.key), e.reason] for e in plan.excluded],
    }


def plan_from_json(data: Json) -> DispatchPlan:
    allocation = np.array(data["allocation_w"], dtype=np.float64)
    allocation.setflags(write=False)
    return DispatchPlan(
        direction=Direction(data["direction"]),
        algorithm=data["algorithm"],
        requested_w=float(data["requested_w"]),
        committed_w=float(data["committed_w"]),
        available_w=float(data["available_w"]),
        deployable_w=float(data["deployable_w"]),
        headroom=float(data["headroom"]),
        duration_s=float(data["duration_s"]),
        keys=tuple(key_from_json(k) for k in data["keys"]),
        allocation_w=allocation,
        shortfall_w=float(data["shortfall_w"]),
        shortfall_reason=data["shortfall_reason"],
        excluded=tuple(Exclusion(key_from_json(e[:3]), str(e[3])) for e in data["excluded"]),
    )
