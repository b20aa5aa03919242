"""A frequency service as the core holds it: request, status, plan, the stations' answers,
events, and the report's inputs (``services.report``). Kept by ``manager``, journaled by
``journal_codec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vpp_core.dispatch.model import Direction, SessionKey
from vpp_core.services.activations import StationActivation
from vpp_core.services.allocation import ServicePlan, SessionShare
from vpp_core.services.products import ServiceRequest
from vpp_core.services.report import (
    ActivationResponse,
    CapacityLedger,
    ShareLog,
    fleet_activations,
)

__all__ = ["HeldService", "ServiceStatus"]


class ServiceStatus(StrEnum):
    SENDING = "sending"
    HOLDING = "holding"
    ENDED = "ended"
    CANCELLED = "cancelled"
    FAILED = "failed"
    #: Taken back after a core restart outside its window (or not resumed, by config): its
    #: profiles are cleared as the stations reconnect (``services.leftovers``).
    INTERRUPTED = "interrupted"


@dataclass
class HeldService:
    """A service and what happened to it; ``sent``/``cleared``: the station's answer per
    session (``Accepted``, ``Rejected: reason``, ``error: ...``)."""

    service_id: str
    request: ServiceRequest
    plan: ServicePlan
    status: ServiceStatus = ServiceStatus.SENDING
    sent: dict[SessionKey, str] = field(default_factory=dict)
    cleared: dict[SessionKey, str] = field(default_factory=dict)
    #: Sessions that lost their share (and why); the re-plan leaves them out.
    dropped: dict[SessionKey, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    #: The report's inputs: capacity per settlement interval, the shares the stations
    #: accepted over time, the activations their gateways reported (``services.report``).
    capacity: CapacityLedger = field(init=False)
    share_log: ShareLog = field(default_factory=ShareLog)
    activations: list[StationActivation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.capacity = CapacityLedger(self.request)

    @property
    def open(self) -> bool:
        return self.status in (ServiceStatus.SENDING, ServiceStatus.HOLDING)

    @property
    def holding(self) -> tuple[SessionShare, ...]:
        """The shares whose profile the station accepted."""
        return tuple(s for s in self.plan.shares if self.sent.get(s.key) == "Accepted")

    def holding_w(self) -> dict[str, float]:
        """Per direction, the accepted shares' sum (W)."""
        shares = self.holding
        return {
            Direction.DISCHARGE.value: sum(s.discharge_w for s in shares),
            Direction.CHARGE.value: sum(s.charge_w for s in shares),
        }

    def responses(self) -> list[ActivationResponse]:
        """Each fleet activation, judged against the curves (``services.report``)."""
        return fleet_activations(self.activations, self.share_log, self.request)
