"""Wire models of the grid-operator API. Operator units: MW, positive, with a direction; the
conversion to the house convention (W, negative = discharge) happens here and only here."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vpp_core.dispatch.model import MAX_OVERSHOOT_PCT, DispatchRequest, Exclusion
from vpp_core.dispatch.service import PlanSummary

Direction = Literal["discharge", "charge"]
#: A dispatch below 1 kW is noise, not a request (5e-324 MW was once accepted).
MIN_POWER_MW = 0.001
MAX_POWER_MW = 10_000
#: The dispatch engine's default ``max_duration_s``: the schema states it, so a client
#: learns the limit from the OpenAPI document, not from a 422.
MAX_DURATION_S = 86_400


class DispatchCreate(BaseModel):
    """A dispatch request. ``start`` defaults to now."""

    model_config = ConfigDict(extra="forbid")

    power_mw: float = Field(
        ge=MIN_POWER_MW,
        le=MAX_POWER_MW,
        allow_inf_nan=False,
        description=f"MW, a magnitude ({MIN_POWER_MW} = 1 kW, the smallest EV's minimum "
        f"power, to {MAX_POWER_MW:,}); the direction says which way",
    )
    direction: Direction
    start: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset")
    duration_s: float = Field(
        gt=0,
        le=MAX_DURATION_S,
        allow_inf_nan=False,
        description=f"seconds, up to {MAX_DURATION_S:,} (one day; [dispatch] max_duration_s "
        "may set less)",
    )
    algorithm: Literal["proportional", "merit_order"] = "proportional"
    headroom: float = Field(
        default=0.9, gt=0, le=1, description="share of available power deployed"
    )
    region: str | None = Field(default=None, min_length=1, max_length=64)
    site: str | None = Field(default=None, min_length=1, max_length=64)
    tracking: Literal["power", "energy"] = Field(
        default="power",
        description="power: the fleet is never commanded above the target (plus "
        "tolerance_pct); energy: energy behind target may be caught up by commanding up to "
        "max_overshoot_pct above it",
    )
    tolerance_pct: float = Field(
        default=0.0, ge=0, le=MAX_OVERSHOOT_PCT, allow_inf_nan=False,
        description="power tracking: % of the target the fleet may be commanded above it",
    )  # fmt: skip
    max_overshoot_pct: float = Field(
        default=10.0, ge=0, le=MAX_OVERSHOOT_PCT, allow_inf_nan=False,
        description="energy tracking: % of the target the catch-up may command above it",
    )  # fmt: skip

    def to_request(self, now: datetime) -> DispatchRequest:
        sign = -1.0 if self.direction == "discharge" else 1.0
        return DispatchRequest(
            target_w=sign * self.power_mw * 1e6,
            start=self.start or now,
            duration_s=self.duration_s,
            algorithm=self.algorithm,
            headroom=self.headroom,
            region=self.region,
            site=self.site,
            tracking=self.tracking,
            tolerance_pct=self.tolerance_pct,
            max_overshoot_pct=self.max_overshoot_pct,
        )


def tracking_contract(r: DispatchRequest) -> str:
    """The request's tracking contract in words (plan summaries state it)."""
    if r.tracking == "power":
        return f"power: commanded never above the target (+{r.tolerance_pct:g} % tolerance)"
    return f"energy: catch-up may command up to {r.max_overshoot_pct:g} % above the target"


def mw(power_w: float) -> float:
    """Magnitude in MW (the direction is stated separately)."""
    return abs(power_w) / 1e6


class ExclusionOut(BaseModel):
    station_id: str
    evse_id: int
    transaction_id: str
    reason: str

    @classmethod
    def of(cls, e: Exclusion) -> ExclusionOut:
        k = e.key
        return cls(
            station_id=k.station_id,
            evse_id=k.evse_id,
            transaction_id=k.transaction_id,
            reason=e.reason,
        )


class PlanSummaryOut(BaseModel):
    requested_mw: float
    committed_mw: float
    available_mw: float
    sessions_used: int
    sessions_eligible: int
    expected_tracking_uncertainty_mw: float
    shortfall_mw: float
    feasible: bool
    message: str
    tracking: str = Field(description="the tracking contract the dispatch runs under")
    excluded: list[ExclusionOut]

    @classmethod
    def of(cls, s: PlanSummary, request: DispatchRequest) -> PlanSummaryOut:
        return cls(
            tracking=tracking_contract(request),
            requested_mw=mw(s.requested_w),
            committed_mw=mw(s.committed_w),
            available_mw=s.available_w / 1e6,
            sessions_used=s.sessions_used,
            sessions_eligible=s.sessions_eligible,
            expected_tracking_uncertainty_mw=s.expected_uncertainty_w / 1e6,
            shortfall_mw=s.shortfall_w / 1e6,
            feasible=s.feasible,
            message=s.message,
            excluded=[ExclusionOut.of(e) for e in s.excluded],
        )


class RequestOut(BaseModel):
    power_mw: float
    direction: Direction
    start: datetime
    end: datetime
    duration_s: float
    algorithm: str
    headroom: float
    region: str | None
    site: str | None
    tracking: str
    tolerance_pct: float
    max_overshoot_pct: float

    @classmethod
    def of(cls, r: DispatchRequest) -> RequestOut:
        return cls(
            power_mw=mw(r.target_w),
            direction=r.direction.value,
            start=r.start,
            end=r.end,
            duration_s=r.duration_s,
            algorithm=r.algorithm,
            headroom=r.headroom,
            region=r.region,
            site=r.site,
            tracking=r.tracking,
            tolerance_pct=r.tolerance_pct,
            max_overshoot_pct=r.max_overshoot_pct,
        )


class DispatchCreatedOut(BaseModel):
    id: str
    status: str
    request: RequestOut
    plan: PlanSummaryOut


class AllocationOut(BaseModel):
    station_id: str
    evse_id: int
    transaction_id: str
    setpoint_w: float = Field(description="W, negative = discharge")
    dropped_at: datetime | None
    drop_reason: str | None
    lagging: bool


class DispatchOut(BaseModel):
    id: str
    status: str
    request: RequestOut
    plan: PlanSummaryOut | None = Field(description="the plan made at the start (or preview)")
    current_committed_mw: float | None = Field(
        description="latest closed-loop plan: target plus energy correction, within headroom"
    )
    allocations: list[AllocationOut]
    live_power_mw: float = Field(description="measured fleet power of the dispatch, magnitude")
    live_direction: Direction
    delivered_energy_mwh: float
    events: list[str]


class FleetSessionOut(BaseModel):
    station_id: str
    evse_id: int
    transaction_id: str
    site: str
    region: str
    connected: bool
    soc_pct: float | None
    available_discharge_w: float
    available_charge_w: float
    present_power_w: float = Field(description="W, negative = discharge")
    departure: datetime | None
    dispatch_id: str | None
    needs_reported_at: datetime | None = Field(
        description="when the EV's charging needs (V2X limits) arrived; null = not yet, and "
        "until then a plan leaves the session out"
    )


class FleetOut(BaseModel):
    sessions: list[FleetSessionOut]
    available_discharge_mw: float
    available_charge_mw: float


class ReasonOut(BaseModel):
    field: str = Field(description="where: `body.power_mw`, `query.format`, `body` (not JSON)")
    reason: str


class ErrorOut(BaseModel):
    """Every error body: ``detail`` says what went wrong; a 422 lists ``reasons``."""

    detail: str
    reasons: list[ReasonOut] = []
