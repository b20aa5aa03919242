"""``GET /api/v1/services/{id}/report``: a frequency service's settlement and prequalification
report (``vpp_core.services.report`` says what each figure is and where it comes from).
Operator units: MW and MWh magnitudes per direction for capacity, W and Wh signed (negative =
out of the EVs) for a response, as the edge measured it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from vpp_core.api.schemas import ErrorOut
from vpp_core.api.services import PREFIX, AfrrSetpointOut, ServiceRequestOut, get_held
from vpp_core.services.afrr import AfrrSetpoint
from vpp_core.services.manager import FrequencyServices, HeldService
from vpp_core.services.report import (
    ActivationResponse,
    CapacityInterval,
    Requirement,
    ResponseFigures,
)

__all__ = ["ServiceReportOut", "service_report_router"]

CAPACITY_SOURCE = (
    "per settlement interval (product's period, UTC-aligned, clipped to the window): "
    "contracted; planned; held = accepted shares (minimum over samples); deliverable = each "
    "accepted share limited by what its session could sustain for the product's endurance "
    "from its live limits and SoC (minimum and mean over samples, one each control period)"
)
ACTIVATION_SOURCE = (
    "FREQUENCY_ACTIVATION events from the gateways (MQTT): each station's 100 ms log of "
    "frequency and measured power, thinned to 0.1 s for 5 s, 1 s to 60 s, 10 s to 20 min; "
    "expected = the share's curve at the station's measured frequency; delivered = measured "
    "power minus its mean over the 10 s before; times to 1/50/95/99 % of the peak expected"
)
AFRR_SOURCE = (
    "one row per operator setpoint relayed as AFRRSignal: requested (signed MW, negative = "
    "discharge); delivered = the holding sessions' metered power (their last MeterValues) "
    "when the next setpoint arrived or the service ended, null while in force; stale rows "
    "are the core's own signal 0 after the operator's stream stopped"
)


class CapacityIntervalOut(BaseModel):
    start: datetime
    end: datetime
    direction: str
    samples: int
    contracted_mw: float
    planned_mw: float
    held_min_mw: float
    deliverable_min_mw: float
    deliverable_mean_mw: float
    covered: bool  # deliverable >= contracted at every sample

    @classmethod
    def of(cls, i: CapacityInterval, d: str) -> CapacityIntervalOut:
        return cls(
            start=i.start, end=i.end, direction=d, samples=i.samples,
            contracted_mw=i.contracted_w[d] / 1e6, planned_mw=i.planned_w.get(d, 0.0) / 1e6,
            held_min_mw=i.held_min_w.get(d, 0.0) / 1e6,
            deliverable_min_mw=i.deliverable_min_w.get(d, 0.0) / 1e6,
            deliverable_mean_mw=i.deliverable_mean_w(d) / 1e6, covered=i.covered(d),
        )  # fmt: skip


class ResponseOut(BaseModel):
    reference_w: float
    delay_s: float | None
    t50_s: float | None
    t95_s: float | None
    t100_s: float | None
    expected_wh: float
    delivered_wh: float
    energy_ratio: float | None
    points: int
    duration_s: float

    @classmethod
    def of(cls, f: ResponseFigures) -> ResponseOut:
        ratio = f.delivered_wh / f.expected_wh if abs(f.expected_wh) > 1e-9 else None
        return cls(
            reference_w=f.reference_w, delay_s=f.delay_s, t50_s=f.t50_s, t95_s=f.t95_s,
            t100_s=f.t100_s, expected_wh=f.expected_wh, delivered_wh=f.delivered_wh,
            energy_ratio=ratio, points=f.points, duration_s=f.duration_s,
        )  # fmt: skip


class RequirementOut(BaseModel):
    figure: str
    limit_s: float
    measured_s: float | None
    met: bool

    @classmethod
    def of(cls, r: Requirement) -> RequirementOut:
        return cls(figure=r.figure, limit_s=r.limit_s, measured_s=r.measured_s, met=r.met)


class ActivationOut(BaseModel):
    started_at: datetime
    delta_f_hz: float
    direction: str
    fleet: ResponseOut
    requirements: list[RequirementOut]
    stations: dict[str, ResponseOut]
    series: list[tuple[float, float, float, float]]  # t_s, mean freq_hz, expected_w, delivered_w
    stations_reported: list[str]
    stations_missing: list[str]  # held a share, no activation reported (yet)
    stations_without_share: list[str]

    @classmethod
    def of(cls, a: ActivationResponse) -> ActivationOut:
        return cls(
            started_at=a.started_at, delta_f_hz=a.delta_f_hz, direction=a.direction,
            fleet=ResponseOut.of(a.fleet),
            requirements=[RequirementOut.of(r) for r in a.requirements],
            stations={sid: ResponseOut.of(f) for sid, f in a.stations.items()},
            series=[tuple(round(x, 4) for x in p) for p in a.series],  # type: ignore[misc]
            stations_reported=list(a.reported), stations_missing=list(a.missing),
            stations_without_share=list(a.without_share),
        )  # fmt: skip


class ServiceReportOut(BaseModel):
    id: str
    status: str
    request: ServiceRequestOut
    settlement_period_s: float
    capacity_source: str
    capacity: list[CapacityIntervalOut]
    activation_source: str
    activations: list[ActivationOut]
    afrr_source: str | None = None
    #: aFRR: every setpoint kept (up to 10,000, ~11 h), requested vs delivered.
    afrr_setpoints: list[AfrrSetpointOut] = []

    @classmethod
    def of(cls, held: HeldService, setpoints: Sequence[AfrrSetpoint] = ()) -> ServiceReportOut:
        return cls(
            id=held.service_id, status=held.status.value,
            request=ServiceRequestOut.of(held.request),
            settlement_period_s=held.capacity.period_s, capacity_source=CAPACITY_SOURCE,
            capacity=[CapacityIntervalOut.of(i, d) for i in held.capacity.intervals
                      for d in i.contracted_w],
            activation_source=ACTIVATION_SOURCE,
            activations=[ActivationOut.of(a) for a in held.responses()],
            afrr_source=None if held.request.spec.local_frequency else AFRR_SOURCE,
            afrr_setpoints=[AfrrSetpointOut.of(p) for p in setpoints],
        )  # fmt: skip


def service_report_router(services: FrequencyServices) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["frequency services"])

    @router.get(
        "/services/{service_id}/report",
        response_model=ServiceReportOut,
        responses={404: {"model": ErrorOut}},
    )
    async def service_report(service_id: str) -> ServiceReportOut:
        """Capacity held per settlement interval and, per activation, the fleet's response
        against the curve (the sample set of every figure is stated in the report)."""
        held = get_held(services, service_id)
        return ServiceReportOut.of(held, services.afrr.setpoints(service_id))

    return router
