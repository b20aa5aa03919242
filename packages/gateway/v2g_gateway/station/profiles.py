"""Charging profiles as domain values, parsed from the adapter's snake_case
``ChargingProfileType`` dicts and checked against the rules a station applies before accepting
one (purpose/kind/transaction rules, operation-mode rules, units).

Values in a :class:`SchedulePeriod` stay in the schedule's own unit (W or A) exactly as sent;
:meth:`SchedulePeriod.in_watts` turns them into signed watts for one EVSE's voltage and phases.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.frequency_profiles import (
    LOCAL_FREQUENCY,
    check_local_frequency,
    curve_discharges,
    parse_freq_curve,
)
from v2g_gateway.station.signal_profiles import (
    CENTRAL_FREQUENCY,
    SignalWattCurve,
    check_central_frequency,
    parse_signal_curve,
)

__all__ = [
    "SUPPORTED_MODES",
    "ChargingProfile",
    "ChargingSchedule",
    "PeriodWatts",
    "SchedulePeriod",
    "asks_discharge",
    "check_discharge",
    "check_profile",
    "parse_datetime",
    "parse_profile",
]

PURPOSES = (
    "ChargingStationExternalConstraints",
    "ChargingStationMaxProfile",
    "TxDefaultProfile",
    "TxProfile",
    "PriorityCharging",
    "LocalGeneration",
)
#: Operation modes this station can execute itself (LocalFrequency: the control loop runs the
#: frequency-watt curve; CentralFrequency: the CSMS's AFRRSignal through the signal-watt
#: curve); the others need a controller it does not have (load balancing, an external
#: setpoint source).
SUPPORTED_MODES = frozenset(
    {"Idle", "ChargingOnly", "CentralSetpoint", LOCAL_FREQUENCY, CENTRAL_FREQUENCY}
)
#: Purposes the composite schedule merges; PriorityCharging/LocalGeneration are not offered.
SUPPORTED_PURPOSES = frozenset(PURPOSES[:4])


@dataclass(frozen=True, slots=True)
class PeriodWatts:
    """One period's values in signed watts (positive into the EV).

    ``setpoint_w`` is set for CentralSetpoint periods; a legacy negative limit (a CSMS older
    than 2.1 asks for discharge that way) becomes a CentralSetpoint period whose setpoint and
    dischargeLimit are that limit; ``discharge_limit_w`` is <= 0. A LocalFrequency period's
    ``setpoint_w`` is its ``v2xBaseline`` and ``freq_curve`` the curve added to it; a
    CentralFrequency period's ``setpoint_w`` is its baseline (0 W without one) and
    ``signal_curve`` maps the CSMS's aFRR signal to the watts added to it.
    """

    mode: str
    limit_w: float | None
    discharge_limit_w: float | None
    setpoint_w: float | None
    freq_curve: FreqWattCurve | None = None
    signal_curve: SignalWattCurve | None = None


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_period_s: int
    limit: float | None = None
    limit_l2: float | None = None
    limit_l3: float | None = None
    discharge_limit: float | None = None
    discharge_limit_l2: float | None = None
    discharge_limit_l3: float | None = None
    setpoint: float | None = None
    setpoint_l2: float | None = None
    setpoint_l3: float | None = None
    number_phases: int | None = None
    operation_mode: str = "ChargingOnly"
    v2x_baseline: float | None = None
    freq_curve: FreqWattCurve | None = None
    signal_curve: SignalWattCurve | None = None

    def in_watts(self, unit: str, *, voltage_v: float, phases: int) -> PeriodWatts:
        """Signed watts for an EVSE at ``voltage_v`` using up to ``phases`` phases."""
        used = min(self.number_phases or phases, phases)

        def total(l1: float | None, l2: float | None, l3: float | None) -> float | None:
            if l1 is None:
                return None
            if l2 is None and l3 is None:
                return l1 * voltage_v * used if unit == "A" else l1
            summed = l1 + (l2 or 0.0) + (l3 or 0.0)
            return summed * voltage_v if unit == "A" else summed

        limit = total(self.limit, self.limit_l2, self.limit_l3)
        setpoint = total(self.setpoint, self.setpoint_l2, self.setpoint_l3)
        discharge = total(self.discharge_limit, self.discharge_limit_l2, self.discharge_limit_l3)
        if limit is not None and limit < 0 and setpoint is None:
            # Backwards compatibility: a negative limit is a discharge request, executed and
            # reported as what it is: a central setpoint, bounded by itself.
            return PeriodWatts("CentralSetpoint", None, limit, limit)
        if self.operation_mode == LOCAL_FREQUENCY:  # checked: unit W, baseline and curve
            return PeriodWatts(
                LOCAL_FREQUENCY, limit, discharge, self.v2x_baseline, self.freq_curve
            )
        if self.operation_mode == CENTRAL_FREQUENCY:  # checked: unit W and curve
            baseline = self.v2x_baseline or 0.0
            return PeriodWatts(
                CENTRAL_FREQUENCY, limit, discharge, baseline, signal_curve=self.signal_curve
            )
        return PeriodWatts(self.operation_mode, limit, discharge, setpoint)


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    id: int
    charging_rate_unit: str
    periods: tuple[SchedulePeriod, ...]
    start_schedule: datetime | None = None
    duration_s: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A profile installed on one EVSE (0 = the whole station)."""

    id: int
    evse_id: int
    stack_level: int
    purpose: str
    kind: str
    schedule: ChargingSchedule
    recurrency_kind: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    max_offline_duration_s: int | None = None
    invalid_after_offline_duration: bool = False
    dyn_update_interval_s: int | None = None
    received_at: datetime | None = None


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset ('Z' accepted); naive times are refused."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProfileRejected("InvalidValue", f"not a date-time: {text!r}") from None
    if value.tzinfo is None:
        raise ProfileRejected("InvalidValue", f"date-time without offset: {text!r}")
    return value


def _opt_time(wire: Mapping[str, Any], key: str) -> datetime | None:
    value = wire.get(key)
    return None if value is None else parse_datetime(str(value))


def _number(wire: Mapping[str, Any], key: str) -> float | None:
    value = wire.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileRejected("InvalidValue", f"{key} must be a finite number")
    return float(value)


#: The active-power values a schedule period carries (snake_case wire keys).
PERIOD_POWER_KEYS = (
    "limit",
    "limit_l2",
    "limit_l3",
    "discharge_limit",
    "discharge_limit_l2",
    "discharge_limit_l3",
    "setpoint",
    "setpoint_l2",
    "setpoint_l3",
)


def _period(wire: Mapping[str, Any]) -> SchedulePeriod:
    numbers = {key: _number(wire, key) for key in PERIOD_POWER_KEYS}
    return SchedulePeriod(
        start_period_s=int(wire["start_period"]),
        number_phases=wire.get("number_phases"),
        operation_mode=str(wire.get("operation_mode") or "ChargingOnly"),
        v2x_baseline=_number(wire, "v2x_baseline"),
        freq_curve=parse_freq_curve(wire),
        signal_curve=parse_signal_curve(wire),
        **numbers,
    )


def _schedule(wire: Mapping[str, Any]) -> ChargingSchedule:
    return ChargingSchedule(
        id=int(wire["id"]),
        charging_rate_unit=str(wire["charging_rate_unit"]),
        periods=tuple(_period(p) for p in wire["charging_schedule_period"]),
        start_schedule=_opt_time(wire, "start_schedule"),
        duration_s=wire.get("duration"),
    )


def parse_profile(
    wire: Mapping[str, Any], *, evse_id: int, received_at: datetime
) -> ChargingProfile:
    """The domain profile from a snake_case ``ChargingProfileType`` dict (schema-valid)."""
    schedules = wire["charging_schedule"]
    if len(schedules) != 1:
        # Several schedules are offers for an ISO 15118 EV to choose from; not supported.
        raise ProfileRejected("UnsupportedParam", "exactly one chargingSchedule is supported")
    return ChargingProfile(
        id=int(wire["id"]),
        evse_id=evse_id,
        stack_level=int(wire["stack_level"]),
        purpose=str(wire["charging_profile_purpose"]),
        kind=str(wire["charging_profile_kind"]),
        schedule=_schedule(schedules[0]),
        recurrency_kind=wire.get("recurrency_kind"),
        valid_from=_opt_time(wire, "valid_from"),
        valid_to=_opt_time(wire, "valid_to"),
        transaction_id=wire.get("transaction_id"),
        max_offline_duration_s=wire.get("max_offline_duration"),
        invalid_after_offline_duration=bool(wire.get("invalid_after_offline_duration", False)),
        dyn_update_interval_s=wire.get("dyn_update_interval"),
        received_at=received_at,
    )


def check_profile(
    profile: ChargingProfile,
    *,
    evse_ids: frozenset[int],
    transactions: Mapping[int, str],
    now: datetime,
) -> None:
    """Raise :class:`ProfileRejected` unless the station can accept ``profile``.

    ``transactions`` maps EVSE id to its running transaction id.
    """
    _check_target(profile, evse_ids=evse_ids, transactions=transactions)
    _check_kind(profile)
    _check_validity(profile, now=now)
    _check_periods(profile)


def _check_target(
    profile: ChargingProfile, *, evse_ids: frozenset[int], transactions: Mapping[int, str]
) -> None:
    purpose, evse = profile.purpose, profile.evse_id
    if evse != 0 and evse not in evse_ids:
        raise ProfileRejected("UnknownEvse", f"no EVSE {evse}")
    if purpose not in SUPPORTED_PURPOSES:
        raise ProfileRejected("UnsupportedParam", f"purpose {purpose} is not supported")
    if purpose == "ChargingStationExternalConstraints":
        raise ProfileRejected("InvalidProfile", "external constraints are not set by a CSMS")
    if purpose == "ChargingStationMaxProfile" and evse != 0:
        raise ProfileRejected("InvalidProfile", "ChargingStationMaxProfile needs evseId 0")
    if purpose != "TxProfile" and profile.transaction_id is not None:
        raise ProfileRejected("InvalidProfile", "transactionId is only for TxProfile")
    if purpose == "TxProfile":
        if evse == 0:
            raise ProfileRejected("InvalidProfile", "TxProfile needs an EVSE, not evseId 0")
        running = transactions.get(evse)
        if running is None:
            raise ProfileRejected("NoTransaction", f"no transaction on EVSE {evse}")
        if profile.transaction_id is not None and profile.transaction_id != running:
            raise ProfileRejected("TxNotFound", f"transaction {profile.transaction_id} unknown")


def _check_kind(profile: ChargingProfile) -> None:
    kind, schedule = profile.kind, profile.schedule
    if kind in ("Absolute", "Recurring") and schedule.start_schedule is None:
        raise ProfileRejected("InvalidSchedule", f"{kind} profile needs startSchedule")
    if kind == "Relative" and schedule.start_schedule is not None:
        raise ProfileRejected("InvalidSchedule", "Relative profile must not have startSchedule")
    if kind == "Recurring" and profile.recurrency_kind is None:
        raise ProfileRejected("InvalidSchedule", "Recurring profile needs recurrencyKind")
    if kind != "Recurring" and profile.recurrency_kind is not None:
        raise ProfileRejected("InvalidSchedule", "recurrencyKind is only for Recurring")
    if kind == "Recurring" and schedule.duration_s is not None:
        period_s = 86400 if profile.recurrency_kind == "Daily" else 7 * 86400
        if schedule.duration_s > period_s:
            raise ProfileRejected("InvalidSchedule", "duration exceeds the recurrence period")
    if kind == "Dynamic" and len(schedule.periods) != 1:
        raise ProfileRejected("InvalidSchedule", "Dynamic profile needs exactly one period")
    if kind != "Dynamic" and profile.dyn_update_interval_s is not None:
        raise ProfileRejected("InvalidSchedule", "dynUpdateInterval is only for Dynamic")
    if profile.max_offline_duration_s is not None and profile.max_offline_duration_s < 0:
        raise ProfileRejected("InvalidValue", "maxOfflineDuration must be >= 0")


def _check_validity(profile: ChargingProfile, *, now: datetime) -> None:
    if profile.valid_to is not None:
        if profile.valid_to <= now:
            raise ProfileRejected("InvalidValue", "validTo is in the past")
        if profile.valid_from is not None and profile.valid_to <= profile.valid_from:
            raise ProfileRejected("InvalidValue", "validTo is not after validFrom")
    if profile.schedule.duration_s is not None and profile.schedule.duration_s <= 0:
        raise ProfileRejected("InvalidSchedule", "duration must be > 0")


def _check_periods(profile: ChargingProfile) -> None:
    schedule = profile.schedule
    if schedule.charging_rate_unit not in ("W", "A"):
        raise ProfileRejected("InvalidValue", "chargingRateUnit must be W or A")
    starts = [p.start_period_s for p in schedule.periods]
    if starts[0] != 0:
        raise ProfileRejected("InvalidSchedule", "first startPeriod must be 0")
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise ProfileRejected("InvalidSchedule", "startPeriod values must increase")
    for period in schedule.periods:
        _check_period(period, profile.purpose)
        if period.operation_mode == LOCAL_FREQUENCY:
            check_local_frequency(
                purpose=profile.purpose,
                unit=schedule.charging_rate_unit,
                baseline_w=period.v2x_baseline,
                curve=period.freq_curve,
                setpoint=period.setpoint,
            )
        if period.operation_mode == CENTRAL_FREQUENCY:
            check_central_frequency(
                purpose=profile.purpose,
                unit=schedule.charging_rate_unit,
                curve=period.signal_curve,
                setpoint=period.setpoint,
            )


def _check_period(period: SchedulePeriod, purpose: str) -> None:
    mode = period.operation_mode
    if mode not in SUPPORTED_MODES:
        raise ProfileRejected("UnsupportedParam", f"operationMode {mode} is not supported")
    if mode == "CentralSetpoint" and period.setpoint is None:
        raise ProfileRejected("InvalidSchedule", "CentralSetpoint needs setpoint")
    if mode == "ChargingOnly" and period.limit is None:
        raise ProfileRejected("InvalidSchedule", "ChargingOnly needs limit")
    if mode == "ChargingOnly" and period.setpoint is not None:
        raise ProfileRejected("InvalidSchedule", "setpoint needs CentralSetpoint")
    if mode == "ChargingOnly" and period.discharge_limit not in (None, 0.0):
        raise ProfileRejected("InvalidSchedule", "ChargingOnly allows no discharge")
    if purpose in ("ChargingStationMaxProfile", "ChargingStationExternalConstraints"):
        if period.setpoint is not None:
            raise ProfileRejected("InvalidSchedule", f"{purpose} takes limits, not setpoints")
        if period.limit is not None and period.limit < 0:
            raise ProfileRejected("InvalidValue", f"{purpose} limit must be >= 0")
    if period.limit is not None and period.limit < 0 and mode != "ChargingOnly":
        raise ProfileRejected("InvalidValue", "negative limit only in legacy ChargingOnly form")
    setpoint, floor = period.setpoint, period.discharge_limit
    if setpoint is not None and floor is not None and setpoint < floor:
        raise ProfileRejected("InvalidValue", "setpoint is beyond dischargeLimit")
    if period.number_phases == 0:
        raise ProfileRejected("InvalidValue", "numberPhases must be 1..3")


def asks_discharge(profile: ChargingProfile) -> bool:
    """Whether any period commands power out of the EV: a negative setpoint, a legacy
    negative limit (a dischargeLimit alone only bounds a setpoint), or a LocalFrequency /
    CentralFrequency baseline + curve that goes below 0 W somewhere."""
    for period in profile.schedule.periods:
        if curve_discharges(period.v2x_baseline, period.freq_curve):
            return True
        signal = period.signal_curve
        if signal is not None and (period.v2x_baseline or 0.0) + min(signal.power_w) < 0:
            return True
        values = (
            period.setpoint,
            period.setpoint_l2,
            period.setpoint_l3,
            period.limit,
            period.limit_l2,
            period.limit_l3,
        )
        if any(v is not None and v < 0 for v in values):
            return True
    return False


def check_discharge(profile: ChargingProfile, *, bidirectional: bool) -> None:
    """Refuse a TxProfile that discharges a session which negotiated no bidirectional mode
    (issue 13 item 5): OCPP 2.1's reasonCode for an operation the EV cannot do,
    ``InvalidOperationMode``. Never executed, so never reported as ChargingOnly either."""
    if profile.purpose == "TxProfile" and not bidirectional and asks_discharge(profile):
        raise ProfileRejected(
            "InvalidOperationMode",
            f"EVSE {profile.evse_id}: the session negotiated no bidirectional energy transfer "
            "mode (or the CSMS allowed none): discharge refused",
        )
