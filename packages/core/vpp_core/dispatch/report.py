"""The delivery report of a dispatch (pure: computed from the runner's records).

Deviation attribution, per interval, in the dispatch direction (W, positive = under-delivery):
    target - delivered = (target - committed)           -> headroom / capacity / compensation
                       + (committed - planned)          -> commands: setpoint dead-band, failures
                       + dropout                        -> setpoints of sessions that dropped out
                       + (planned - dropout - delivered) -> lag: vehicles not at their setpoint
``committed`` is what the plan in force aimed for, ``planned`` the sum of setpoints in force.
A shortfall of the plan is "capacity" where the target exceeded what the fleet had available,
of which any growth since the first plan counts as drop-outs (capacity lost with them); the
rest is "headroom" withheld on purpose. Any other difference between plan and target is the
closed loop ("compensation": negative when it asks for more to recover energy, positive when
it backs off after over-delivering; also minimum-power rounding). The parts sum exactly to
the headline's energy deviation, measured like it (the meter registers when the fleet reports
them): what the meters say beyond the sampled power (energy moved between samples, the tail
of sessions that ended mid-window) is the vehicles' part, ``lag``. So an operator can size
the next commitment from the same figure the headline gives.

Headline figures (``TrackingStats``), each over the sample set it names: the error of the
sampled fleet power against the target per control interval, over the whole window and after
the ramp-in; time to 90 % of the target; max overshoot of delivered and of commanded power;
and the PJM-style performance score of the delivered power against the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import Direction, DispatchRequest, Exclusion, SessionKey
from vpp_core.dispatch.performance import PerformanceScore, performance_score
from vpp_core.dispatch.roles import RoleShare, role_breakdown

__all__ = [
    "DeviationAttribution",
    "DispatchReport",
    "SessionContribution",
    "TrackingStats",
    "build_report",
]


@dataclass(frozen=True, slots=True)
class TrackingStats:
    """Error = delivered - target (signed W) over the control intervals; shares and counts
    name their sample set: ``samples`` (every interval) or ``samples_after_ramp_in``."""

    samples: int
    mean_error_w: float
    mean_abs_error_w: float
    rmse_w: float
    max_abs_error_w: float
    relative_rmse: float  # rmse / |target|
    within_5pct_share: float  # of all ``samples``, |error| <= 5 % of target
    ramp_in_s: float
    samples_after_ramp_in: int  # intervals starting at least ``ramp_in_s`` after the start
    within_5pct_after_ramp_in_share: float  # of ``samples_after_ramp_in``
    time_to_90pct_s: float | None  # first interval end at >= 90 % of target; None: never
    max_overshoot_pct: float  # delivered above target, % of target (0: never above)
    max_commanded_overshoot_pct: float  # setpoints in force above target, % of target


@dataclass(frozen=True, slots=True)
class DeviationAttribution:
    """Energy short of target (Wh, positive = under-delivered) and where it came from."""

    total_wh: float
    dropout_wh: float
    lag_wh: float
    headroom_wh: float
    capacity_wh: float
    compensation_wh: float
    command_wh: float


@dataclass(frozen=True, slots=True)
class SessionContribution:
    key: SessionKey
    first_setpoint_w: float
    last_setpoint_w: float
    metered_energy_wh: float  # signed, from the meter registers
    sampled_energy_wh: float  # signed, integral of reported power
    dropped_at: datetime | None
    drop_reason: str | None
    ended_at: datetime | None  # the session ended in the window (its Ended reading counts)
    lagging: bool
    end_status: str | None


@dataclass(frozen=True, slots=True)
class DispatchReport:
    dispatch_id: str
    status: str
    direction: Direction
    start: datetime
    end: datetime
    requested_w: float
    committed_w: float
    tracking_mode: str  # "power" or "energy" (the request's tracking contract)
    overshoot_allowed_pct: float  # power: tolerance_pct; energy: max_overshoot_pct
    target_energy_wh: float  # signed
    delivered_energy_wh: float  # signed, metered (see energy_source)
    energy_source: str  # "meter registers" or "sampled power"
    sampled_energy_wh: float  # signed, integral of the sampled fleet power
    energy_error_pct: float  # delivered vs target in the dispatch direction, + = over
    tracking: TrackingStats
    performance: PerformanceScore | None  # None: fewer than 3 intervals
    attribution: DeviationAttribution
    intervals: tuple[IntervalRecord, ...]
    sessions: tuple[SessionContribution, ...]
    excluded: tuple[Exclusion, ...]
    #: Sent a profile, and its clear (or resume) was not answered Accepted/Unknown.
    uncleared: tuple[SessionKey, ...]
    #: Ended (EV gone) before the clear: their profile went with the transaction.
    ended_before_clear: tuple[SessionKey, ...]
    replans: tuple[datetime, ...]  # re-plans after drop-outs and rejoins
    #: The charge-only part (OCPP 2.0.1, no BPT mode) apart from the bidirectional part.
    roles: tuple[RoleShare, ...] = ()


def _share_within_5pct(error: np.ndarray, target: np.ndarray) -> float:
    return float((np.abs(error) <= 0.05 * np.abs(target)).mean()) if error.size else 0.0


#: Overshoot is stated to 0.001 % of target: below that it is the rounding of the summed meter
#: values (a fleet at 200 kW read 9 mW above it), not power a market could measure.
OVERSHOOT_DECIMALS = 3


def _overshoot_pct(power: np.ndarray, target: np.ndarray, sign: float) -> float:
    """Largest excess of ``power`` over the target in the dispatch direction, % of target."""
    excess = (sign * power - np.abs(target)) / np.abs(target) * 100.0
    return max(0.0, round(float(excess.max()), OVERSHOOT_DECIMALS))


def tracking_stats(
    intervals: tuple[IntervalRecord, ...], *, start: datetime, ramp_in_s: float, sign: float
) -> TrackingStats:
    if not intervals:
        return TrackingStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ramp_in_s, 0, 0.0, None, 0.0, 0.0)
    target = np.array([r.target_w for r in intervals])
    delivered = np.array([r.delivered_w for r in intervals])
    error = delivered - target
    after = np.array([(r.t_start - start).total_seconds() >= ramp_in_s for r in intervals])
    rmse = float(np.sqrt(np.mean(error**2)))
    scale = float(np.mean(np.abs(target))) or 1.0
    reached = np.flatnonzero(sign * delivered >= 0.9 * np.abs(target))
    planned = np.array([r.planned_w for r in intervals])
    return TrackingStats(
        samples=len(intervals),
        mean_error_w=float(error.mean()),
        mean_abs_error_w=float(np.abs(error).mean()),
        rmse_w=rmse,
        max_abs_error_w=float(np.abs(error).max()),
        relative_rmse=rmse / scale,
        within_5pct_share=_share_within_5pct(error, target),
        ramp_in_s=ramp_in_s,
        samples_after_ramp_in=int(after.sum()),
        within_5pct_after_ramp_in_share=_share_within_5pct(error[after], target[after]),
        time_to_90pct_s=(
            (intervals[reached[0]].t_end - start).total_seconds() if reached.size else None
        ),
        max_overshoot_pct=_overshoot_pct(delivered, target, sign),
        max_commanded_overshoot_pct=_overshoot_pct(planned, target, sign),
    )


def score(intervals: tuple[IntervalRecord, ...]) -> PerformanceScore | None:
    """The PJM-style score of delivered against target power (None: under 3 intervals)."""
    if len(intervals) < 3:
        return None
    sample_s = float(np.median([r.duration_s for r in intervals]))
    return performance_score(
        [abs(r.target_w) for r in intervals],
        [abs(r.delivered_w) for r in intervals],
        sample_s=sample_s,
        step_s=sample_s,
    )


def attribute_deviation(
    intervals: tuple[IntervalRecord, ...],
    *,
    sign: float,
    initial_available_w: float,
    unsampled_wh: float = 0.0,
) -> DeviationAttribution:
    """Split the energy deviation into its causes (see the module docstring).

    ``unsampled_wh``: energy (signed) the meters counted beyond the sampled power; it is the
    vehicles' part (``lag``), so the parts sum to the metered deviation."""
    if not intervals:
        return DeviationAttribution(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    col = {
        name: np.array([getattr(r, name) for r in intervals]) for name in IntervalRecord.__slots__
    }
    hours = np.array([r.duration_s for r in intervals]) / 3600.0
    target, planned = sign * col["target_w"], sign * col["planned_w"]
    committed = sign * col["committed_w"]
    dropout, delivered = sign * col["dropout_w"], sign * col["delivered_w"]
    gap = target - committed
    short = np.minimum(np.maximum(gap, 0.0), np.maximum(0.0, target - col["deployable_w"]))
    capacity = np.minimum(short, np.maximum(0.0, target - col["available_w"]))
    initial_capacity = np.maximum(0.0, target - initial_available_w)
    capacity_lost = np.maximum(0.0, capacity - initial_capacity)
    unsampled = sign * unsampled_wh
    return DeviationAttribution(
        total_wh=float(((target - delivered) * hours).sum()) - unsampled,
        dropout_wh=float(((dropout + capacity_lost) * hours).sum()),
        lag_wh=float(((planned - dropout - delivered) * hours).sum()) - unsampled,
        headroom_wh=float(((short - capacity) * hours).sum()),
        capacity_wh=float(((capacity - capacity_lost) * hours).sum()),
        compensation_wh=float(((gap - short) * hours).sum()),
        command_wh=float(((committed - planned) * hours).sum()),
    )


def _contribution(record: SessionRecord) -> SessionContribution:
    return SessionContribution(
        key=record.key,
        first_setpoint_w=record.first_setpoint_w,
        last_setpoint_w=record.setpoint_w,
        metered_energy_wh=record.metered_energy_wh,
        sampled_energy_wh=record.sampled_energy_wh,
        dropped_at=record.dropped_at,
        drop_reason=record.drop_reason,
        ended_at=record.ended_at,
        lagging=record.lagging,
        end_status=record.end_status,
    )


def delivered_energy_wh(
    sessions: tuple[SessionRecord, ...] | list[SessionRecord], sampled_wh: float
) -> tuple[float, str]:
    """Fleet energy from the meter registers, or from sampled power where registers are absent
    (a fleet whose registers moved less than half the sampled energy is taken not to report)."""
    metered = sum(s.metered_energy_wh for s in sessions)
    if abs(metered) >= 0.5 * abs(sampled_wh):
        return metered, "meter registers"
    return sampled_wh, "sampled power"


def build_report(
    dispatch_id: str,
    request: DispatchRequest,
    *,
    status: str,
    intervals: tuple[IntervalRecord, ...],
    sessions: tuple[SessionRecord, ...],
    committed_w: float,
    initial_available_w: float,
    excluded: tuple[Exclusion, ...],
    ramp_in_s: float,
    replans: tuple[datetime, ...] = (),
) -> DispatchReport:
    """Assemble the report; energy target covers the intervals actually run."""
    sign = request.direction.sign
    target_wh = sum(r.target_w * r.duration_s for r in intervals) / 3600.0
    sampled_wh = sum(r.delivered_w * r.duration_s for r in intervals) / 3600.0
    delivered_wh, source = delivered_energy_wh(sessions, sampled_wh)
    error_pct = (sign * (delivered_wh - target_wh)) / abs(target_wh) * 100.0 if target_wh else 0.0
    involved = tuple(s for s in sessions if s.profile_sent or s.metered_energy_wh)
    ended = tuple(s.key for s in sessions if s.profile_sent and s.ended_at is not None)
    return DispatchReport(
        dispatch_id=dispatch_id,
        status=status,
        direction=request.direction,
        start=request.start,
        end=intervals[-1].t_end if intervals else request.start,
        requested_w=request.target_w,
        committed_w=committed_w,
        tracking_mode=request.tracking,
        overshoot_allowed_pct=request.overshoot_frac * 100.0,
        target_energy_wh=target_wh,
        delivered_energy_wh=delivered_wh,
        energy_source=source,
        sampled_energy_wh=sampled_wh,
        energy_error_pct=error_pct,
        tracking=tracking_stats(intervals, start=request.start, ramp_in_s=ramp_in_s, sign=sign),
        performance=score(intervals),
        attribution=attribute_deviation(
            intervals,
            sign=sign,
            initial_available_w=initial_available_w,
            unsampled_wh=delivered_wh - sampled_wh,
        ),
        intervals=intervals,
        sessions=tuple(_contribution(s) for s in involved),
        excluded=excluded,
        uncleared=tuple(
            s.key
            for s in sessions
            if s.profile_sent and s.ended_at is None and s.end_status not in ("Accepted", "Unknown")
        ),
        ended_before_clear=ended,
        replans=replans,
        roles=role_breakdown(sessions),
    )
