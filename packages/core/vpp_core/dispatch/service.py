"""DispatchService: what the API calls. Validates, previews the plan, refuses overlaps, hands the
dispatch to the runner and returns its id; reads progress, reports and the fleet."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.errors import (
    DispatchConflictError,
    DispatchNotRecordedError,
    InvalidDispatchError,
)
from vpp_core.dispatch.model import DispatchRequest, Exclusion, SessionKey
from vpp_core.dispatch.planner import DispatchPlan, plan_dispatch
from vpp_core.dispatch.ports import SessionState
from vpp_core.dispatch.progress import DispatchProgress, DispatchStatus
from vpp_core.dispatch.report import DispatchReport
from vpp_core.dispatch.runner import DispatchRunner

__all__ = ["DispatchCreated", "DispatchService", "PlanSummary", "summarize"]

#: How long an accepted dispatch may wait for the journal before the API refuses it.
RECORD_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """A plan as the operator sees it (W, signed; the API converts to MW)."""

    requested_w: float
    committed_w: float
    available_w: float
    sessions_used: int
    sessions_eligible: int
    expected_uncertainty_w: float
    shortfall_w: float
    feasible: bool
    message: str
    excluded: tuple[Exclusion, ...]


@dataclass(frozen=True, slots=True)
class DispatchCreated:
    dispatch_id: str
    request: DispatchRequest
    summary: PlanSummary


def summarize(plan: DispatchPlan, *, uncertainty_pct: float) -> PlanSummary:
    eligible = len(plan.keys) - len({e.key for e in plan.excluded})
    feasible = plan.shortfall_w == 0.0
    if feasible:
        message = "feasible as requested"
    else:
        message = (
            f"infeasible as requested: accepted for {abs(plan.committed_w) / 1e6:.3f} MW of "
            f"{abs(plan.requested_w) / 1e6:.3f} MW ({plan.shortfall_reason})"
        )
    return PlanSummary(
        requested_w=plan.requested_w,
        committed_w=plan.committed_w,
        available_w=plan.available_w,
        sessions_used=plan.sessions_used,
        sessions_eligible=eligible,
        expected_uncertainty_w=abs(plan.committed_w) * uncertainty_pct / 100.0,
        shortfall_w=plan.shortfall_w,
        feasible=feasible,
        message=message,
        excluded=plan.excluded,
    )


class DispatchService:
    def __init__(self, runner: DispatchRunner, *, new_id: Callable[[], str] | None = None) -> None:
        self.runner = runner
        self.config = runner.config
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._previews: dict[str, DispatchPlan] = {}

    # --- create ---------------------------------------------------------------------------
    def _validate(self, request: DispatchRequest) -> None:
        now = self.runner.clock.now()
        reasons = []
        if (now - request.start).total_seconds() > self.config.max_start_in_past_s:
            reasons.append(("start", f"is in the past (now is {now.isoformat()})"))
        if request.duration_s > self.config.max_duration_s:
            reasons.append(
                ("duration_s", f"exceeds the maximum of {self.config.max_duration_s:.0f} s")
            )
        if reasons:
            raise InvalidDispatchError(reasons)

    def preview(self, request: DispatchRequest) -> DispatchPlan:
        """The plan the fleet supports now for this request's window (no commands sent)."""
        sessions = [
            s
            for s in self.runner.fleet.sessions()
            if (request.region is None or s.region == request.region)
            and (request.site is None or s.site == request.site)
        ]
        start = max(request.start, self.runner.clock.now())
        blocked = self.runner.known_conflicts(sessions, window_start=start)
        held = self.runner.busy_sessions  # e.g. claimed by a dispatch taken back after a restart
        blocked.update(
            (s.key, f"held by dispatch {held[s.key]}") for s in sessions if s.key in held
        )
        columns = build_columns(
            sessions, direction=request.direction, window_start=start, window_end=request.end,
            config=self.config.planner, station_limit_w=self.config.station_limit_w,
            site_limit_w=self.config.site_limit_w,
            blocked=blocked,
        )  # fmt: skip
        return plan_dispatch(
            columns,
            target_w=request.target_w,
            duration_s=max((request.end - start).total_seconds(), 1e-3),
            headroom=request.headroom,
            algorithm=request.algorithm,
        )

    def _sessions_of(self, progress: DispatchProgress) -> set[SessionKey]:
        if progress.sessions:
            return set(progress.sessions)
        preview = self._previews.get(progress.dispatch_id)
        return {k for k, _ in preview.allocations()} if preview else set()

    def _check_overlap(self, request: DispatchRequest, plan: DispatchPlan) -> None:
        wanted = {k for k, _ in plan.allocations()}
        for other in self.runner.all_progress():
            if not other.status.active or not other.request.overlaps(request):
                continue
            shared = wanted & self._sessions_of(other)
            if shared:
                raise DispatchConflictError(other.dispatch_id, len(shared))

    async def create(self, request: DispatchRequest) -> DispatchCreated:
        """Accept a dispatch (also when only partly feasible: the summary says so). Returns
        once the dispatch is in the journal; one the journal cannot record is cancelled and
        refused (:class:`DispatchNotRecordedError`)."""
        self._validate(request)
        plan = self.preview(request)
        self._check_overlap(request, plan)
        dispatch_id = self._new_id()
        self._previews[dispatch_id] = plan
        progress = self.runner.start(dispatch_id, request)
        await self._until_recorded(progress)
        return DispatchCreated(
            dispatch_id, request, summarize(plan, uncertainty_pct=self.uncertainty_pct())
        )

    async def _until_recorded(self, progress: DispatchProgress) -> None:
        cause = "the dispatch journal could not record it"
        try:
            await asyncio.wait_for(progress.recorded.wait(), RECORD_WAIT_S)
        except TimeoutError:
            cause = f"no answer from the dispatch journal in {RECORD_WAIT_S:g} s"
        if progress.recorded_ok:
            return
        if progress.status is DispatchStatus.FAILED:
            cause = "its task failed before it was recorded (see the core's log)"
        else:
            progress.events.append(f"refused: {cause}")
        self.runner.cancel(progress.dispatch_id)
        await progress.done.wait()
        raise DispatchNotRecordedError(progress.dispatch_id, cause)

    def uncertainty_pct(self) -> float:
        """Expected tracking error: the configured prior, or the median relative RMSE of the
        last ten completed dispatches if that is larger."""
        recent = [
            p.report.tracking.relative_rmse * 100.0
            for p in self.runner.all_progress()[-10:]
            if p.report is not None and p.status is DispatchStatus.COMPLETED
        ]
        history = statistics.median(recent) if recent else 0.0
        return max(self.config.tracking_uncertainty_pct, history)

    # --- read / cancel --------------------------------------------------------------------
    def get(self, dispatch_id: str) -> DispatchProgress:
        return self.runner.progress(dispatch_id)

    def list(self) -> list[DispatchProgress]:
        return self.runner.all_progress()

    def initial_plan(self, dispatch_id: str) -> DispatchPlan | None:
        """The plan made at the start (before that: the preview made when accepted)."""
        progress = self.runner.progress(dispatch_id)
        return progress.initial_plan or self._previews.get(dispatch_id)

    def current_plan(self, dispatch_id: str) -> DispatchPlan | None:
        """The latest closed-loop plan (its goal includes the energy correction)."""
        return self.runner.progress(dispatch_id).plan

    async def cancel(self, dispatch_id: str) -> DispatchProgress:
        """Stop a dispatch and wait until its profiles are cleared and its report written."""
        progress = self.runner.cancel(dispatch_id)
        await progress.done.wait()
        return progress

    def report(self, dispatch_id: str) -> DispatchReport:
        return self.runner.progress(dispatch_id).current_report(ramp_in_s=self.config.ramp_in_s)

    def fleet(self) -> tuple[Sequence[SessionState], dict[SessionKey, str]]:
        """Sessions now, and which dispatch holds which session."""
        return self.runner.fleet.sessions(), self.runner.busy_sessions
