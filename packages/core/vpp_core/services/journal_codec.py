"""JSON shape of a journaled frequency service (pure: dicts of JSON types, no I/O): what a
restarted core needs to take it back (request, status, plan, the stations' answers, events)
and its report's inputs (capacity intervals, shares over time, activations). Times are ISO
8601 with their offset; session keys as their three parts (the dispatch journal's
``key_to_json``). A shape read back gives an equal value
(``tests/unit/core/services/test_service_journal.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vpp_core.dispatch.journal_codec import key_from_json, key_to_json
from vpp_core.dispatch.model import Direction, Exclusion, SessionKey
from vpp_core.services.activations import StationActivation
from vpp_core.services.allocation import DirectionPlan, ServicePlan, SessionShare
from vpp_core.services.held import HeldService, ServiceStatus
from vpp_core.services.products import Product, ServiceRequest
from vpp_core.services.report import CapacityInterval

__all__ = ["Json", "held_from_json", "held_to_json", "request_from_json", "request_to_json"]

Json = dict[str, Any]
_ANSWERS = ("sent", "cleared", "dropped")
_INTERVAL_FIGURES = ("planned_w", "held_min_w", "deliverable_min_w", "deliverable_sum_w")


def request_to_json(r: ServiceRequest) -> Json:
    return {
        "product": r.product.value, "capacity_w": r.capacity_w, "direction": r.direction,
        "start": r.start.isoformat(), "duration_s": r.duration_s,
        "deadband_mhz": r.deadband_mhz, "full_activation_mhz": r.full_activation_mhz,
        "nominal_hz": r.nominal_hz, "headroom": r.headroom,
    }  # fmt: skip


def request_from_json(data: Json) -> ServiceRequest:
    return ServiceRequest(
        product=Product(data["product"]),
        capacity_w=float(data["capacity_w"]),
        direction=data["direction"],
        start=datetime.fromisoformat(data["start"]),
        duration_s=float(data["duration_s"]),
        deadband_mhz=float(data["deadband_mhz"]),
        full_activation_mhz=float(data["full_activation_mhz"]),
        nominal_hz=float(data["nominal_hz"]),
        headroom=float(data["headroom"]),
    )


def _share_to_json(s: SessionShare) -> list[Any]:
    return [*key_to_json(s.key), s.discharge_w, s.charge_w]


def _share_from_json(data: list[Any]) -> SessionShare:
    return SessionShare(key_from_json(data[:3]), float(data[3]), float(data[4]))


def _plan_to_json(p: ServicePlan) -> Json:
    return {
        "directions": [[d.direction.value, d.requested_w, d.available_w, d.committed_w]
                       for d in p.directions],
        "headroom": p.headroom, "endurance_s": p.endurance_s,
        "shares": [_share_to_json(s) for s in p.shares],
        "excluded": [[*key_to_json(e.key), e.reason] for e in p.excluded],
    }  # fmt: skip


def _plan_from_json(data: Json) -> ServicePlan:
    return ServicePlan(
        directions=tuple(
            DirectionPlan(Direction(d), float(req), float(avail), float(com))
            for d, req, avail, com in data["directions"]
        ),
        headroom=float(data["headroom"]),
        endurance_s=float(data["endurance_s"]),
        shares=tuple(_share_from_json(s) for s in data["shares"]),
        excluded=tuple(Exclusion(key_from_json(e[:3]), str(e[3])) for e in data["excluded"]),
    )


def _answers_to_json(answers: dict[SessionKey, str]) -> list[list[Any]]:
    return [[*key_to_json(k), v] for k, v in answers.items()]


def _answers_from_json(data: list[list[Any]]) -> dict[SessionKey, str]:
    return {key_from_json(a[:3]): str(a[3]) for a in data}


def _interval_to_json(i: CapacityInterval) -> Json:
    return {"start": i.start.isoformat(), "end": i.end.isoformat(),
            "contracted_w": i.contracted_w, "samples": i.samples,
            **{name: getattr(i, name) for name in _INTERVAL_FIGURES}}  # fmt: skip


def _interval_from_json(data: Json) -> CapacityInterval:
    return CapacityInterval(
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]),
        contracted_w=dict(data["contracted_w"]),
        samples=int(data["samples"]),
        **{name: dict(data[name]) for name in _INTERVAL_FIGURES},
    )


def _activation_to_json(a: StationActivation) -> Json:
    return {"station_id": a.station_id, "started_at": a.started_at.isoformat(),
            "nominal_hz": a.nominal_hz, "baseline_w": a.baseline_w,
            "series": [list(p) for p in a.series], "truncated": a.truncated}  # fmt: skip


def _activation_from_json(data: Json) -> StationActivation:
    return StationActivation(
        station_id=str(data["station_id"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        nominal_hz=float(data["nominal_hz"]),
        baseline_w=float(data["baseline_w"]),
        series=tuple((float(t), float(f), float(p)) for t, f, p in data["series"]),
        truncated=bool(data["truncated"]),
    )


def held_to_json(held: HeldService) -> Json:
    """Everything of a service but its id, status and request (the journal's own columns)."""
    return {
        "plan": _plan_to_json(held.plan),
        **{name: _answers_to_json(getattr(held, name)) for name in _ANSWERS},
        "events": list(held.events),
        "capacity": [_interval_to_json(i) for i in held.capacity.intervals],
        "share_log": [[at.isoformat(), [_share_to_json(s) for s in shares.values()]]
                      for at, shares in held.share_log.entries],
        "activations": [_activation_to_json(a) for a in held.activations],
    }  # fmt: skip


def held_from_json(
    service_id: str, status: str, request: ServiceRequest, data: Json
) -> HeldService:
    held = HeldService(service_id, request, _plan_from_json(data["plan"]), ServiceStatus(status))
    for name in _ANSWERS:
        getattr(held, name).update(_answers_from_json(data[name]))
    held.events.extend(data["events"])
    held.capacity.intervals.extend(_interval_from_json(i) for i in data["capacity"])
    for at, shares in data["share_log"]:
        held.share_log.entries.append(
            (datetime.fromisoformat(at), {s[0]: _share_from_json(s) for s in shares})
        )
    held.activations.extend(_activation_from_json(a) for a in data["activations"])
    return held
