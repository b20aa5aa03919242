"""The composite schedule: what one EVSE may (limit, dischargeLimit) and should (setpoint) do
over time, merged from every installed profile. Pure: time is an argument.

Merge rules (OCPP 2.1 K08):
- within a purpose the active profile with the highest stackLevel wins (an EVSE-specific
  TxDefaultProfile beats one installed on EVSE 0);
- a TxProfile for the running transaction replaces the TxDefaultProfile;
- ChargingStationMaxProfile and ChargingStationExternalConstraints bound the result: the
  charge limit is the minimum of all limits, the discharge limit the one closest to zero, and a
  setpoint is clamped into [dischargeLimit, limit];
- a profile with ``maxOfflineDuration`` stops applying that long after the station went
  offline (the next lower one takes over); 0 means not at all while offline;
- the local limits (the EVSE's rating, what the EV declared, whether the CSMS allowed a
  bidirectional mode) bound everything like one more cap, so a period always carries the
  ``limit`` it is executed with and never a discharge the EVSE will not do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.station.profiles import ChargingProfile, PeriodWatts
from v2g_gateway.station.signal_profiles import SignalWattCurve

__all__ = [
    "ActiveTransaction",
    "CompositePeriod",
    "CompositeSchedule",
    "EvseElectrics",
    "LocalLimits",
    "compose",
    "target_power_w",
]

_RECURRENCE_S = {"Daily": 86400, "Weekly": 7 * 86400}
_CAP_PURPOSES = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints")


@dataclass(frozen=True, slots=True)
class ActiveTransaction:
    transaction_id: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class EvseElectrics:
    """What turns amperes into watts for one EVSE."""

    evse_id: int
    voltage_v: float
    phases: int


@dataclass(frozen=True, slots=True)
class LocalLimits:
    """What the EVSE itself allows now, as magnitudes in W (>= 0): its rating bounded by the
    EV's declared maxima; ``discharge_w`` is 0 unless a bidirectional mode was negotiated."""

    charge_w: float
    discharge_w: float = 0.0


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    """Values from ``start`` until the next period (or the end of the schedule), in watts.
    LocalFrequency: ``setpoint_w`` is the baseline, ``freq_curve`` the curve added to it;
    CentralFrequency (aFRR): ``setpoint_w`` is the baseline, ``signal_curve`` maps the CSMS's
    signal to the watts added to it."""

    start: datetime
    mode: str
    limit_w: float | None
    discharge_limit_w: float | None
    setpoint_w: float | None
    freq_curve: FreqWattCurve | None = None
    signal_curve: SignalWattCurve | None = None


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    evse_id: int
    start: datetime
    duration_s: int
    periods: tuple[CompositePeriod, ...]

    def at(self, when: datetime) -> CompositePeriod:
        """The period in force at ``when`` (clamped to the schedule's window)."""
        current = self.periods[0]
        for period in self.periods:
            if period.start > when:
                break
            current = period
        return current


def compose(
    profiles: Iterable[ChargingProfile],
    *,
    evse: EvseElectrics,
    start: datetime,
    duration_s: int,
    transaction: ActiveTransaction | None = None,
    offline_since: datetime | None = None,
    local: LocalLimits | None = None,
) -> CompositeSchedule:
    """Merge ``profiles`` for ``evse`` over ``[start, start + duration_s)``, bounded by
    ``local`` when given."""
    relevant = [p for p in profiles if p.evse_id in (0, evse.evse_id)]
    end = start + timedelta(seconds=duration_s)
    times = sorted(
        {
            start,
            *(t for p in relevant for t in _breakpoints(p, start, end, transaction, offline_since)),
        }
    )
    periods: list[CompositePeriod] = []
    for when in times:
        period = _evaluate(relevant, when, evse, transaction, offline_since)
        if local is not None:
            period = _bounded(period, local)
        if periods and _same_values(periods[-1], period):
            continue
        periods.append(period)
    return CompositeSchedule(evse.evse_id, start, duration_s, tuple(periods))


def target_power_w(period: CompositePeriod, *, charge_w: float) -> float:
    """The power to command: the setpoint if there is one, else charge at ``charge_w``
    (the EV's or configured charging power) bounded by the limit; 0 when Idle."""
    if period.setpoint_w is not None:
        return period.setpoint_w
    if period.mode == "Idle":
        return 0.0
    if period.limit_w is None:
        return charge_w
    return max(0.0, min(charge_w, period.limit_w))


def _same_values(a: CompositePeriod, b: CompositePeriod) -> bool:
    return (
        a.mode,
        a.limit_w,
        a.discharge_limit_w,
        a.setpoint_w,
        a.freq_curve,
        a.signal_curve,
    ) == (b.mode, b.limit_w, b.discharge_limit_w, b.setpoint_w, b.freq_curve, b.signal_curve)


def _evaluate(
    profiles: Sequence[ChargingProfile],
    when: datetime,
    evse: EvseElectrics,
    transaction: ActiveTransaction | None,
    offline_since: datetime | None,
) -> CompositePeriod:
    def winner(purpose: str, evse_ids: tuple[int, ...]) -> PeriodWatts | None:
        for evse_id in evse_ids:
            candidates = [p for p in profiles if p.purpose == purpose and p.evse_id == evse_id]
            for profile in sorted(candidates, key=lambda p: p.stack_level, reverse=True):
                value = _value_at(profile, when, evse, transaction, offline_since)
                if value is not None:
                    return value
        return None

    tx = winner("TxProfile", (evse.evse_id,)) or winner("TxDefaultProfile", (evse.evse_id, 0))
    caps = [c for c in (winner(purpose, (0,)) for purpose in _CAP_PURPOSES) if c is not None]
    return _merge(when, tx, caps)


def _merge(when: datetime, tx: PeriodWatts | None, caps: list[PeriodWatts]) -> CompositePeriod:
    sources = ([tx] if tx is not None else []) + caps
    limits = [s.limit_w for s in sources if s.limit_w is not None]
    discharge = [s.discharge_limit_w for s in sources if s.discharge_limit_w is not None]
    limit_w = min(limits) if limits else None
    discharge_limit_w = max(discharge) if discharge else None
    setpoint_w = tx.setpoint_w if tx is not None else None
    if setpoint_w is not None:
        cap_limits = [c.limit_w for c in caps if c.limit_w is not None]
        if cap_limits:
            setpoint_w = min(setpoint_w, min(cap_limits))
        if discharge_limit_w is not None:
            setpoint_w = max(setpoint_w, discharge_limit_w)
    mode = tx.mode if tx is not None else "ChargingOnly"
    curve = tx.freq_curve if tx is not None else None
    signal_curve = tx.signal_curve if tx is not None else None
    return CompositePeriod(when, mode, limit_w, discharge_limit_w, setpoint_w, curve, signal_curve)


def _bounded(period: CompositePeriod, local: LocalLimits) -> CompositePeriod:
    """``period`` within the local limits: the charge limit is never above ``charge_w``; a
    period that may discharge gets a dischargeLimit no deeper than ``-discharge_w`` and its
    setpoint clamped into [dischargeLimit, limit]."""
    limit_w = local.charge_w if period.limit_w is None else min(period.limit_w, local.charge_w)
    if period.mode in ("ChargingOnly", "Idle"):
        return replace(period, limit_w=limit_w)
    floor_w = -local.discharge_w
    discharge_w = (
        floor_w if period.discharge_limit_w is None else max(period.discharge_limit_w, floor_w)
    )
    setpoint_w = period.setpoint_w
    if setpoint_w is not None:
        setpoint_w = max(min(setpoint_w, limit_w), discharge_w)
    return replace(period, limit_w=limit_w, discharge_limit_w=discharge_w, setpoint_w=setpoint_w)


def _applies(
    profile: ChargingProfile,
    when: datetime,
    transaction: ActiveTransaction | None,
    offline_since: datetime | None,
) -> bool:
    if profile.valid_from is not None and when < profile.valid_from:
        return False
    if profile.valid_to is not None and when >= profile.valid_to:
        return False
    if profile.purpose == "TxProfile" and (
        transaction is None or profile.transaction_id != transaction.transaction_id
    ):
        return False
    expiry = _offline_expiry(profile, offline_since)
    return expiry is None or when < expiry


def _offline_expiry(profile: ChargingProfile, offline_since: datetime | None) -> datetime | None:
    if offline_since is None or profile.max_offline_duration_s is None:
        return None
    return offline_since + timedelta(seconds=profile.max_offline_duration_s)


def _origin(
    profile: ChargingProfile, when: datetime, transaction: ActiveTransaction | None
) -> datetime | None:
    """Where the schedule's startPeriod 0 lies for the instance in force at ``when``."""
    schedule = profile.schedule
    if profile.kind == "Recurring" and schedule.start_schedule is not None:
        step = _RECURRENCE_S[profile.recurrency_kind or "Daily"]
        elapsed = (when - schedule.start_schedule).total_seconds()
        if elapsed < 0:
            return None
        return schedule.start_schedule + timedelta(seconds=step * math.floor(elapsed / step))
    if schedule.start_schedule is not None:
        return schedule.start_schedule
    if profile.kind == "Relative" and transaction is not None:
        return transaction.started_at
    return profile.valid_from or profile.received_at


def _value_at(
    profile: ChargingProfile,
    when: datetime,
    evse: EvseElectrics,
    transaction: ActiveTransaction | None,
    offline_since: datetime | None,
) -> PeriodWatts | None:
    if not _applies(profile, when, transaction, offline_since):
        return None
    origin = _origin(profile, when, transaction)
    if origin is None:
        return None
    offset_s = (when - origin).total_seconds()
    duration_s = profile.schedule.duration_s
    if offset_s < 0 or (duration_s is not None and offset_s >= duration_s):
        return None
    current = profile.schedule.periods[0]
    for period in profile.schedule.periods:
        if period.start_period_s > offset_s:
            break
        current = period
    return current.in_watts(
        profile.schedule.charging_rate_unit, voltage_v=evse.voltage_v, phases=evse.phases
    )


def _breakpoints(
    profile: ChargingProfile,
    start: datetime,
    end: datetime,
    transaction: ActiveTransaction | None,
    offline_since: datetime | None,
) -> Iterable[datetime]:
    """Every instant in [start, end) at which ``profile``'s contribution may change."""
    points = [profile.valid_from, profile.valid_to, _offline_expiry(profile, offline_since)]
    for origin in _origins_in(profile, start, end, transaction):
        points.extend(
            origin + timedelta(seconds=p.start_period_s) for p in profile.schedule.periods
        )
        if profile.schedule.duration_s is not None:
            points.append(origin + timedelta(seconds=profile.schedule.duration_s))
    return [p for p in points if p is not None and start <= p < end]


def _origins_in(
    profile: ChargingProfile,
    start: datetime,
    end: datetime,
    transaction: ActiveTransaction | None,
) -> list[datetime]:
    first = _origin(profile, start, transaction)
    if profile.kind != "Recurring" or profile.schedule.start_schedule is None:
        return [first] if first is not None else []
    step = timedelta(seconds=_RECURRENCE_S[profile.recurrency_kind or "Daily"])
    origin = first if first is not None else profile.schedule.start_schedule
    origins = []
    while origin < end:
        origins.append(origin)
        origin += step
    return origins
