"""The live state of one dispatch, shared by the runner (writer) and the service (reader)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import DispatchRequest, SessionKey
from vpp_core.dispatch.planner import DispatchPlan
from vpp_core.dispatch.report import DispatchReport, build_report

__all__ = ["DispatchProgress", "DispatchStatus"]


class DispatchStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    #: The core restarted during the dispatch and did not take it back (configured not to,
    #: or past its window): its profiles are cleared as the stations reconnect.
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        return self in (DispatchStatus.SCHEDULED, DispatchStatus.RUNNING)


@dataclass(eq=False)
class DispatchProgress:
    """Written only by the dispatch's own task; readers take it as a snapshot."""

    dispatch_id: str
    request: DispatchRequest
    status: DispatchStatus = DispatchStatus.SCHEDULED
    initial_plan: DispatchPlan | None = None
    plan: DispatchPlan | None = None
    intervals: list[IntervalRecord] = field(default_factory=list)
    sessions: dict[SessionKey, SessionRecord] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    replans: list[datetime] = field(default_factory=list)  # after drop-outs and rejoins
    report: DispatchReport | None = None
    live_power_w: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once the dispatch is in the journal (at once when the core keeps none); the API
    #: answers 201 only after that, so an accepted dispatch survives a crash right after it.
    recorded: asyncio.Event = field(default_factory=asyncio.Event)
    recorded_ok: bool = False

    def mark_recorded(self, ok: bool) -> None:
        self.recorded_ok = ok
        self.recorded.set()

    def current_report(
        self, *, ramp_in_s: float, status: DispatchStatus | None = None
    ) -> DispatchReport:
        """The final report once done, else a provisional one from what is recorded so far
        (``status``: the one to state, default the present one)."""
        if self.report is not None:
            return self.report
        plan = self.initial_plan
        return build_report(
            self.dispatch_id,
            self.request,
            status=(status or self.status).value,
            intervals=tuple(self.intervals),
            sessions=tuple(self.sessions.values()),
            committed_w=plan.committed_w if plan else 0.0,
            initial_available_w=plan.available_w if plan else 0.0,
            excluded=plan.excluded if plan else (),
            ramp_in_s=ramp_in_s,
            replans=tuple(self.replans),
        )
