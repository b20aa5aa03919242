"""Who holds how much of a frequency service (pure; reuses the dispatch planner's columns).

Per direction held, each eligible session's cap is its rated power and the power it can
sustain for the product's *endurance* from its energy budget (SoC/V2X floor for discharge,
ceiling for charge, departure needs: ``vpp_core.dispatch.columns``), within station and site
limits. The fleet commits at most ``headroom`` x the sum of caps (the rest absorbs
drop-outs), shared in proportion to the caps; a plan that cannot cover the capacity says by
how much and why. Only bidirectional OCPP 2.1 sessions take part (LocalFrequency is 2.1, and
a frequency response goes both ways around the baseline): ``vpp_core.dispatch.eligibility``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.model import Direction, Exclusion, SessionKey
from vpp_core.dispatch.planner import (
    FloatArray,
    SessionColumns,
    apply_group_limits,
    proportional,
    session_caps,
)
from vpp_core.dispatch.ports import SessionState
from vpp_core.services.products import ServiceRequest

__all__ = ["DirectionPlan", "ServicePlan", "SessionShare", "deliverable_w", "plan_service"]


@dataclass(frozen=True, slots=True)
class SessionShare:
    """One session's share (magnitudes, W)."""

    key: SessionKey
    discharge_w: float
    charge_w: float


@dataclass(frozen=True, slots=True)
class DirectionPlan:
    """One direction's outcome (magnitudes, W)."""

    direction: Direction
    requested_w: float
    available_w: float
    committed_w: float

    @property
    def shortfall_w(self) -> float:
        gap = self.requested_w - self.committed_w
        return gap if gap > 1e-6 * max(1.0, self.requested_w) else 0.0


@dataclass(frozen=True, slots=True)
class ServicePlan:
    directions: tuple[DirectionPlan, ...]
    headroom: float
    endurance_s: float
    shares: tuple[SessionShare, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def feasible(self) -> bool:
        return all(d.shortfall_w == 0.0 for d in self.directions)

    @property
    def shortfall_reason(self) -> str | None:
        """Why the capacity is not covered (None when it is)."""
        gaps = [self._gap(d) for d in self.directions if d.shortfall_w]
        return "; ".join(gaps) or None

    def _gap(self, d: DirectionPlan) -> str:
        held = f"{d.direction.value}: {d.committed_w:.0f} of {d.requested_w:.0f} W"
        if d.requested_w <= self.headroom * d.available_w:
            return f"{held} (session minimum powers do not divide the capacity)"
        return (
            f"{held} (headroom {self.headroom:.2f} of {d.available_w:.0f} W sustainable for "
            f"{self.endurance_s:.0f} s)"
        )


def _eligible(
    sessions: Sequence[SessionState], busy: Mapping[SessionKey, str]
) -> tuple[list[SessionState], list[Exclusion]]:
    keep, out = [], []
    for s in sessions:
        reason = s.not_dispatchable or s.charge_only or busy.get(s.key)
        if reason is None:
            keep.append(s)
        else:
            out.append(Exclusion(s.key, reason))
    return keep, out


def _sustainable(
    sessions: Sequence[SessionState],
    request: ServiceRequest,
    direction: Direction,
    config: PlannerConfig,
    since: datetime,
) -> tuple[SessionColumns, FloatArray]:
    """The columns of ``sessions`` and each one's cap: what it can sustain in ``direction``
    for the product's endurance from ``since`` on, within station and site limits."""
    columns = build_columns(
        sessions, direction=direction, window_start=since, window_end=request.end, config=config
    )
    cap = session_caps(columns, duration_s=request.spec.endurance_s)
    cap, _ = apply_group_limits(columns, cap)
    return columns, cap


def deliverable_w(
    sessions: Sequence[SessionState],
    request: ServiceRequest,
    shares: Sequence[SessionShare],
    *,
    config: PlannerConfig,
    at: datetime,
) -> dict[Direction, float]:
    """Per direction held: what ``shares`` can deliver now, each the lesser of its share and
    what its session can sustain for the endurance from ``at`` (its live limits and SoC); a
    share whose session is gone, offline or no longer dispatchable counts 0."""
    by_key = {s.key: s for s in shares}
    live = [s for s in sessions if s.key in by_key and s.connected]
    live, _ = _eligible(live, {})
    out: dict[Direction, float] = {}
    for direction, requested in _wanted(request):
        if requested <= 0:
            continue
        columns, cap = _sustainable(live, request, direction, config, at)
        share = [by_key[k].discharge_w if direction is Direction.DISCHARGE else by_key[k].charge_w
                 for k in columns.keys]  # fmt: skip
        out[direction] = float(sum(min(c, s) for c, s in zip(cap, share, strict=True)))
    return out


def _wanted(request: ServiceRequest) -> tuple[tuple[Direction, float], ...]:
    return ((Direction.DISCHARGE, request.discharge_w), (Direction.CHARGE, request.charge_w))


def _plan_direction(
    sessions: Sequence[SessionState],
    request: ServiceRequest,
    direction: Direction,
    requested_w: float,
    config: PlannerConfig,
) -> tuple[DirectionPlan, dict[SessionKey, float], tuple[Exclusion, ...]]:
    columns, cap = _sustainable(sessions, request, direction, config, request.start)
    available = float(cap.sum())
    alloc = proportional(cap, columns.min_w, min(requested_w, request.headroom * available))
    shares = {columns.keys[i]: float(alloc[i]) for i in alloc.nonzero()[0]}
    plan = DirectionPlan(direction, requested_w, available, float(alloc.sum()))
    return plan, shares, columns.excluded


def plan_service(
    sessions: Sequence[SessionState],
    request: ServiceRequest,
    *,
    config: PlannerConfig,
    busy: Mapping[SessionKey, str] | None = None,
) -> ServicePlan:
    """Shares of ``request`` over ``sessions`` (see the module docstring); ``busy`` sessions
    (already holding another service) are left out with the reason given."""
    eligible, excluded = _eligible(sessions, busy or {})
    wanted = _wanted(request)
    plans: list[DirectionPlan] = []
    shares: dict[Direction, dict[SessionKey, float]] = {}
    reasons: dict[SessionKey, str] = {}
    for direction, requested_w in wanted:
        if requested_w <= 0:
            continue
        plan, got, out = _plan_direction(eligible, request, direction, requested_w, config)
        plans.append(plan)
        shares[direction] = got
        for e in out:
            reasons.setdefault(e.key, e.reason)
    down, up = shares.get(Direction.DISCHARGE, {}), shares.get(Direction.CHARGE, {})
    keys = [s.key for s in eligible if s.key in down or s.key in up]
    excluded += [Exclusion(k, r) for k, r in reasons.items() if k not in set(keys)]
    return ServicePlan(
        directions=tuple(plans),
        headroom=request.headroom,
        endurance_s=request.spec.endurance_s,
        shares=tuple(SessionShare(k, down.get(k, 0.0), up.get(k, 0.0)) for k in keys),
        excluded=tuple(excluded),
    )
