"""``/api/v1/services``: frequency services on the grid-operator API (issue 19). Operator
units: MW, positive, a direction (``symmetric``, or ``discharge``: the response to
under-frequency, ``charge``: to over-frequency), mHz for the curve; converted to domain values
here and only here. Handlers validate, call :class:`FrequencyServices`, return; the service's
life runs in that component. Included by ``create_api``'s caller, so the app's bearer guard
covers every route."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vpp_core.api.schemas import ErrorOut, ExclusionOut
from vpp_core.services.afrr import AfrrSetpoint
from vpp_core.services.allocation import DirectionPlan, ServicePlan, SessionShare
from vpp_core.services.errors import ServiceNotFoundError, ServiceStateError
from vpp_core.services.manager import FrequencyServices, HeldService
from vpp_core.services.products import Product, ServiceDirection, ServiceRequest

__all__ = [
    "AfrrSetpointIn",
    "AfrrSetpointOut",
    "ServiceCreate",
    "ServiceOut",
    "get_held",
    "services_router",
]


class ServiceCreate(BaseModel):
    """A frequency service. ``start`` defaults to now; curve fields default to the product's
    grid-code values (docs/frequency-services.md)."""

    model_config = ConfigDict(extra="forbid")

    product: Product
    capacity_mw: float = Field(gt=0, le=10_000, allow_inf_nan=False, description="MW, > 0")
    direction: ServiceDirection | None = Field(
        default=None, description="symmetric | discharge | charge; default: the product's"
    )
    start: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset")
    duration_s: float = Field(gt=0, le=7 * 86_400, allow_inf_nan=False)
    deadband_mhz: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False)
    full_activation_mhz: float | None = Field(default=None, gt=0, le=5000, allow_inf_nan=False)
    nominal_hz: float = Field(default=50.0, description="50 or 60")
    headroom: float = Field(default=0.9, gt=0, le=1, description="share of sustainable power held")

    def to_request(self, now: datetime) -> ServiceRequest:
        """The domain request (raises ``InvalidServiceError`` naming the fields)."""
        return ServiceRequest.of(
            self.product,
            capacity_w=self.capacity_mw * 1e6,
            start=self.start or now,
            duration_s=self.duration_s,
            direction=self.direction,
            deadband_mhz=self.deadband_mhz,
            full_activation_mhz=self.full_activation_mhz,
            nominal_hz=self.nominal_hz,
            headroom=self.headroom,
        )


class ServiceRequestOut(BaseModel):
    product: Product
    capacity_mw: float
    direction: ServiceDirection
    start: datetime
    end: datetime
    deadband_mhz: float
    full_activation_mhz: float
    nominal_hz: float
    endurance_s: float
    headroom: float

    @classmethod
    def of(cls, r: ServiceRequest) -> ServiceRequestOut:
        return cls(
            product=r.product, capacity_mw=r.capacity_w / 1e6, direction=r.direction,
            start=r.start, end=r.end, deadband_mhz=r.deadband_mhz,
            full_activation_mhz=r.full_activation_mhz, nominal_hz=r.nominal_hz,
            endurance_s=r.spec.endurance_s, headroom=r.headroom,
        )  # fmt: skip


class DirectionOut(BaseModel):
    direction: str
    requested_mw: float
    sustainable_mw: float  # what the eligible sessions can hold for the endurance
    committed_mw: float
    shortfall_mw: float

    @classmethod
    def of(cls, d: DirectionPlan) -> DirectionOut:
        return cls(
            direction=d.direction.value, requested_mw=d.requested_w / 1e6,
            sustainable_mw=d.available_w / 1e6, committed_mw=d.committed_w / 1e6,
            shortfall_mw=d.shortfall_w / 1e6,
        )  # fmt: skip


class ShareOut(BaseModel):
    station_id: str
    evse_id: int
    transaction_id: str
    discharge_w: float
    charge_w: float
    profile: str | None  # the station's answer to SetChargingProfile (None: not sent yet)
    cleared: str | None

    @classmethod
    def of(cls, held: HeldService, s: SessionShare) -> ShareOut:
        k = s.key
        return cls(
            station_id=k.station_id, evse_id=k.evse_id, transaction_id=k.transaction_id,
            discharge_w=s.discharge_w, charge_w=s.charge_w, profile=held.sent.get(k),
            cleared=held.cleared.get(k),
        )  # fmt: skip


class ServicePlanOut(BaseModel):
    feasible: bool
    message: str
    directions: list[DirectionOut]
    excluded: list[ExclusionOut]

    @classmethod
    def of(cls, p: ServicePlan) -> ServicePlanOut:
        return cls(
            feasible=p.feasible,
            message=p.shortfall_reason or "capacity covered",
            directions=[DirectionOut.of(d) for d in p.directions],
            excluded=[ExclusionOut.of(e) for e in p.excluded],
        )


class AfrrSetpointIn(BaseModel):
    """One aFRR setpoint of the operator's stream (every ~4 s): the fleet's power around its
    baseline, in force until the next."""

    model_config = ConfigDict(extra="forbid")

    power_mw: float = Field(ge=0, le=10_000, allow_inf_nan=False, description="MW, >= 0")
    direction: Literal["discharge", "charge"] = Field(
        default="discharge", description="discharge (upward regulation) | charge (downward)"
    )

    @property
    def requested_w(self) -> float:
        return self.power_mw * 1e6 * (-1.0 if self.direction == "discharge" else 1.0)


class AfrrSetpointOut(BaseModel):
    """A setpoint and what came of it (MW signed as everywhere here: negative = discharge).
    ``delivered_mw``: the holding sessions' metered power when the next setpoint came (or the
    service ended); null while it is in force. ``stale``: the core's own signal 0 after the
    operator's stream stopped."""

    at: datetime
    requested_mw: float
    delivered_mw: float | None
    signal: int
    stations: int
    accepted: int
    stale: bool

    @classmethod
    def of(cls, p: AfrrSetpoint) -> AfrrSetpointOut:
        delivered = None if p.delivered_w is None else p.delivered_w / 1e6
        return cls(
            at=p.at, requested_mw=p.requested_w / 1e6, delivered_mw=delivered, signal=p.signal,
            stations=p.stations, accepted=p.accepted, stale=p.stale,
        )  # fmt: skip


class ServiceOut(BaseModel):
    id: str
    status: str
    request: ServiceRequestOut
    plan: ServicePlanOut
    holding_mw: dict[str, float]  # per direction, the shares whose profile was accepted
    shares: list[ShareOut]
    events: list[str]
    #: aFRR only: the last 100 setpoints, requested vs delivered.
    afrr_setpoints: list[AfrrSetpointOut] = []

    @classmethod
    def of(cls, held: HeldService, setpoints: Sequence[AfrrSetpoint] = ()) -> ServiceOut:
        holding = held.holding
        return cls(
            id=held.service_id,
            status=held.status.value,
            request=ServiceRequestOut.of(held.request),
            plan=ServicePlanOut.of(held.plan),
            holding_mw={
                "discharge": sum(s.discharge_w for s in holding) / 1e6,
                "charge": sum(s.charge_w for s in holding) / 1e6,
            },
            shares=[ShareOut.of(held, s) for s in held.plan.shares],
            events=held.events[-50:],
            afrr_setpoints=[AfrrSetpointOut.of(p) for p in setpoints[-100:]],
        )


PREFIX = "/api/v1"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


def get_held(services: FrequencyServices, service_id: str) -> HeldService:
    try:
        return services.get(service_id)
    except ServiceNotFoundError:
        raise HTTPException(404, f"no frequency service {service_id}") from None


def services_router(services: FrequencyServices) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["frequency services"])

    @router.post(
        "/services",
        status_code=201,
        response_model=ServiceOut,
        responses={422: {"model": ErrorOut}},
    )
    async def create_service(body: ServiceCreate, response: Response) -> ServiceOut:
        """Hold frequency-response capacity: each session gets an OCPP 2.1 LocalFrequency
        profile for its share; a fleet that cannot cover the capacity holds what it can
        (``plan.feasible`` false, ``plan.message`` says why)."""
        # An InvalidServiceError gets the API's one 422 shape (api/app.py's handler).
        request = body.to_request(services.clock.now())
        held = services.create(request)
        response.headers["Location"] = f"{PREFIX}/services/{held.service_id}"
        return _out(services, held)

    @router.get("/services", response_model=list[ServiceOut])
    async def list_services() -> list[ServiceOut]:
        return [_out(services, h) for h in services.services()]

    @router.get("/services/{service_id}", response_model=ServiceOut, responses=_NOT_FOUND)
    async def get_service(service_id: str) -> ServiceOut:
        """Status, plan, per-session shares and the stations' answers."""
        return _out(services, get_held(services, service_id))

    @router.delete("/services/{service_id}", response_model=ServiceOut, responses=_NOT_FOUND)
    async def end_service(service_id: str) -> ServiceOut:
        """End early; returns once every profile has been cleared (or reported uncleared)."""
        get_held(services, service_id)
        return _out(services, await services.end(service_id))

    @router.post(
        "/services/{service_id}/afrr-setpoints",
        status_code=201,
        response_model=AfrrSetpointOut,
        responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    async def afrr_setpoint(service_id: str, body: AfrrSetpointIn) -> AfrrSetpointOut:
        """aFRR: relay one setpoint of the operator's stream to the service's stations as
        AFRRSignal; 409 when the service is not aFRR or is over, 422 beyond its capacity."""
        held = get_held(services, service_id)
        try:
            # An InvalidServiceError (beyond the capacity) gets the API's one 422 shape.
            return AfrrSetpointOut.of(await services.afrr.setpoint(held, body.requested_w))
        except ServiceStateError as exc:
            raise HTTPException(409, str(exc)) from None

    return router


def _out(services: FrequencyServices, held: HeldService) -> ServiceOut:
    return ServiceOut.of(held, services.afrr.setpoints(held.service_id))
