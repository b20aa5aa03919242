"""The control law: one pure step from (state, observation, limits) to (setpoint, contactor,
events). No clock, no I/O: ``now_s`` is part of the observation, so tests drive it with any
timeline they like.

Rules, in order of authority:

1. A *trip* (module fault, grid frequency out of window, sensor disagreement, lost module or
   sensor) commands 0 W at once and opens the contactor. It latches until its cause has been
   absent for ``rearm_delay_s`` and a lease arrives after that.
2. The *comms-loss fail-safe* opens the contactor at the last step before
   ``comms_loss_timeout_s`` after the last CSMS contact (the first one a period or less before
   it), so that the open lands within one period after the timeout. Its ramp to 0 W starts
   early enough (:mod:`v2g_gateway.control.comms_loss`) for the output to be at ~0 A by then;
   if it is not (the module did not follow), the contactor opens anyway and says so. Contact
   back during the ramp cancels it; after the open the fail-safe clears only when contact is
   back *and* a lease arrives after that contact.
3. *Hard limits* hold at every step: module ratings, EV V2X limits, site limits; no discharge at
   or below the SoC floor, no charge at or above ``soc_max_pct``; no power without an EV.
   When a hard limit drops below the present command it applies at once (a limit is a limit).
   The SoC floor is ``soc_min_pct + soc_margin_pct`` (the EV's minimum plus a buffer).
4. Everything else moves at most ``ramp_w_per_s``: the lease's setpoint, the drop to 0 W at
   lease expiry, stopping, the fail-safe, and the SoC ramp bands (``soc_ramp_band_pct`` above
   the floor / below ``soc_max_pct``) where the target becomes 0 W so that the ramp normally
   finishes before the hard limit is reached.
5. *Frequency response*: a lease carrying a :class:`~v2g_gateway.control.frequency.FreqWattCurve`
   (OCPP 2.1 LocalFrequency) asks for its ``power_w`` (the baseline) plus the curve's value at
   the measured grid frequency, within the same limits, and moves at the module's own
   ``freq_ramp_w_per_s`` while the lease is live; rules 1-3 still end it.

Sign convention: positive power charges the EV, negative discharges it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from v2g_gateway.control.comms_loss import SettleTracker, current_a, open_after_s, ramp_start_s
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EVENT_CODES, MODULE_FAULT_CODES, EventCode
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.control.ports import StageMeasurement, StageRatings

__all__ = [
    "EvLimits",
    "LawOutput",
    "LawState",
    "Lease",
    "Observation",
    "initial_state",
    "step",
]

_NO_EVENTS: tuple[EventCode, ...] = ()
#: The ramp never takes credit for more than this many periods (a stalled loop must not jump).
_MAX_RAMP_CREDIT_PERIODS = 2.0
#: Differences this small (W) are rounding residue of the ramp, not power.
_SNAP_W = 1e-6
_NOT_TIMING = SettleTracker()  # frozen: one shared instance


@dataclass(frozen=True, slots=True)
class Lease:
    """A setpoint the control loop may hold until ``deadline_s`` (receiver's monotonic clock).
    With a ``curve`` (LocalFrequency) ``power_w`` is the baseline the curve's value is added to."""

    power_w: float
    deadline_s: float
    received_s: float
    curve: FreqWattCurve | None = None


@dataclass(frozen=True, slots=True)
class EvLimits:
    """The EV's declared V2X limits as magnitudes in watts. Until the EV declares them no
    discharge is allowed."""

    max_charge_w: float = math.inf
    max_discharge_w: float = 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one step looks at. ``measurement``/``sensor_power_w`` are ``None`` when the
    read failed this cycle; ``stopping`` asks for a ramp to 0 W and an open contactor;
    ``ev_hold`` too, without ending the loop (the EV's ISO 15118 session is outside its
    charge loop, or timed out), and keeps the contactor open until it is released."""

    now_s: float
    measurement: StageMeasurement | None
    sensor_power_w: float | None
    last_csms_contact_s: float
    lease: Lease | None
    stopping: bool = False
    ev_hold: bool = False


@dataclass(frozen=True, slots=True)
class LawState:
    """What the law remembers between steps."""

    commanded_w: float
    last_step_s: float
    contactor_closed: bool = False
    trip: EventCode | None = None
    cause_absent_since_s: float | None = None
    failsafe: bool = False
    failsafe_since_s: float = 0.0
    comms_ramp: bool = False
    ramp_contact_s: float = 0.0
    settle: SettleTracker = _NOT_TIMING
    contact_back_s: float | None = None
    mismatch_cycles: int = 0
    sensor_fail_cycles: int = 0
    module_fail_cycles: int = 0
    expired_lease_s: float = -math.inf
    ev_connected: bool = False
    soc_floor_active: bool = False
    soc_ceiling_active: bool = False


@dataclass(frozen=True, slots=True)
class LawOutput:
    state: LawState
    setpoint_w: float
    contactor_closed: bool
    events: tuple[EventCode, ...]


def initial_state(now_s: float) -> LawState:
    """0 W, contactor open, nothing latched."""
    return LawState(commanded_w=0.0, last_step_s=now_s)


def step(
    state: LawState,
    obs: Observation,
    cfg: ControlSection,
    ratings: StageRatings,
    ev: EvLimits,
) -> LawOutput:
    """One control step; see the module docstring for the rules."""
    events: list[EventCode] = []
    st = _supervise_hardware(state, obs, cfg, events)
    st = _supervise_comms(st, obs, cfg, events)
    st = _note_edges(st, obs, cfg, events)
    max_charge_w, max_discharge_w = _hard_limits(obs.measurement, cfg, ratings, ev)
    if st.trip is not None:
        commanded = 0.0
    else:
        target = _target_w(st, obs, cfg, max_charge_w, max_discharge_w)
        dt_s = obs.now_s - st.last_step_s
        # After a gap longer than the module's revert timer the module sits at 0 W: ramp
        # up from there instead of jumping back to the old command.
        previous = st.commanded_w if dt_s < cfg.revert_timeout_s else 0.0
        commanded = _ramp(previous, target, dt_s, cfg, _ramp_rate_w_per_s(st, obs, cfg))
        commanded = min(max(commanded, -max_discharge_w), max_charge_w)
    closed = _contactor(st, obs, commanded)
    if not (st.contactor_closed and closed):
        commanded = 0.0  # close first, draw power from the next step on; nothing once open
    settle = st.settle.update(
        last_step_s=st.last_step_s,
        now_s=obs.now_s,
        previous_w=st.commanded_w,
        commanded_w=commanded,
        m=obs.measurement,
        cfg=cfg,
    )
    st = replace(
        st, commanded_w=commanded, last_step_s=obs.now_s, contactor_closed=closed, settle=settle
    )
    return LawOutput(st, commanded, closed, tuple(events) if events else _NO_EVENTS)


def _hard_limits(
    m: StageMeasurement | None, cfg: ControlSection, ratings: StageRatings, ev: EvLimits
) -> tuple[float, float]:
    """(max charge, max discharge) magnitudes allowed right now."""
    max_charge = min(ratings.max_charge_w, ev.max_charge_w, cfg.site_max_import_w)
    max_discharge = min(ratings.max_discharge_w, ev.max_discharge_w, cfg.site_max_export_w)
    if m is None:
        return max(max_charge, 0.0), max(max_discharge, 0.0)
    if not m.ev_connected:
        return 0.0, 0.0
    if m.soc_pct is None or m.soc_pct <= cfg.soc_min_pct + cfg.soc_margin_pct:
        max_discharge = 0.0
    if m.soc_pct is not None and m.soc_pct >= cfg.soc_max_pct:
        max_charge = 0.0
    return max(max_charge, 0.0), max(max_discharge, 0.0)


def _target_w(
    st: LawState, obs: Observation, cfg: ControlSection, max_charge: float, max_discharge: float
) -> float:
    """Where the ramp heads: the lease's setpoint within every limit, else 0 W."""
    lease = obs.lease
    m = obs.measurement
    if st.failsafe or st.comms_ramp or obs.stopping or obs.ev_hold or m is None or lease is None:
        return 0.0
    if obs.now_s >= lease.deadline_s or not st.contactor_closed:
        return 0.0
    if st.soc_floor_active:
        max_discharge = 0.0
    if st.soc_ceiling_active:
        max_charge = 0.0
    requested = lease.power_w
    if lease.curve is not None:
        requested += lease.curve.value_w(m.grid_freq_hz)
    return min(max(requested, -max_discharge), max_charge)


def _ramp_rate_w_per_s(st: LawState, obs: Observation, cfg: ControlSection) -> float:
    """A live frequency response moves at the module's own ramp (a frequency product wants
    full response within a second); stops, expiries and fail-safes at the comfort ramp."""
    lease = obs.lease
    if lease is None or lease.curve is None or st.failsafe or st.comms_ramp or obs.stopping:
        return cfg.ramp_w_per_s  # the comms-loss envelope is timed on the comfort ramp
    return cfg.freq_ramp_w_per_s if obs.now_s < lease.deadline_s else cfg.ramp_w_per_s


def _ramp(
    commanded_w: float, target_w: float, dt_s: float, cfg: ControlSection, rate_w_per_s: float
) -> float:
    credit_s = min(max(dt_s, 0.0), _MAX_RAMP_CREDIT_PERIODS * cfg.period_s)
    max_delta = rate_w_per_s * credit_s
    delta = target_w - commanded_w
    if abs(delta) <= max_delta + _SNAP_W:  # snap: float residue must not cost a whole period
        return target_w
    return commanded_w + (max_delta if delta > 0 else -max_delta)


def _contactor(st: LawState, obs: Observation, commanded_w: float) -> bool:
    """Open on a trip and at the comms-loss deadline at once; on a stop or an unplug once 0 W
    is reached."""
    if st.trip is not None or st.failsafe:
        return False
    m = obs.measurement
    wants_open = obs.stopping or obs.ev_hold or (m is not None and not m.ev_connected)
    if wants_open:
        return st.contactor_closed and commanded_w != 0.0
    if st.contactor_closed:
        return True
    if st.comms_ramp:
        return False  # never close only to open again at the comms-loss deadline
    lease = obs.lease
    return lease is not None and m is not None and obs.now_s < lease.deadline_s


# --- trips ---------------------------------------------------------------------------------


def _supervise_hardware(
    st: LawState, obs: Observation, cfg: ControlSection, events: list[EventCode]
) -> LawState:
    st = _count_failures(st, obs, cfg)
    cause = _trip_cause(st, obs, cfg)
    if cause is not None:
        if st.trip is None:
            events.append(cause)
            return replace(st, trip=cause, cause_absent_since_s=None)
        return replace(st, cause_absent_since_s=None)
    if st.trip is None:
        return st
    since = obs.now_s if st.cause_absent_since_s is None else st.cause_absent_since_s
    lease = obs.lease
    rearmed = since + cfg.rearm_delay_s
    if lease is not None and lease.received_s >= rearmed and obs.now_s >= rearmed:
        events.append(EventCode.TRIP_CLEARED)
        return replace(st, trip=None, cause_absent_since_s=None)
    return replace(st, cause_absent_since_s=since)


def _count_failures(st: LawState, obs: Observation, cfg: ControlSection) -> LawState:
    m = obs.measurement
    module_fail = 0 if m is not None else st.module_fail_cycles + 1
    sensor_fail = 0 if obs.sensor_power_w is not None else st.sensor_fail_cycles + 1
    mismatch = st.mismatch_cycles
    if m is not None and obs.sensor_power_w is not None:
        diff = abs(m.power_w - obs.sensor_power_w)
        tolerance = max(cfg.sensor_tolerance_w, abs(m.power_w) * cfg.sensor_tolerance_pct / 100)
        mismatch = mismatch + 1 if diff > tolerance else 0
    if (module_fail, sensor_fail, mismatch) == (
        st.module_fail_cycles,
        st.sensor_fail_cycles,
        st.mismatch_cycles,
    ):
        return st
    return replace(
        st, module_fail_cycles=module_fail, sensor_fail_cycles=sensor_fail, mismatch_cycles=mismatch
    )


def _trip_cause(st: LawState, obs: Observation, cfg: ControlSection) -> EventCode | None:
    if st.module_fail_cycles >= cfg.module_comm_loss_cycles:
        return EventCode.MODULE_COMM_LOST
    m = obs.measurement
    if m is not None:
        if m.faults:
            return _fault_code(m.faults)
        if not cfg.grid_freq_min_hz <= m.grid_freq_hz <= cfg.grid_freq_max_hz:
            return EventCode.GRID_FREQ_OUT_OF_RANGE
    if st.sensor_fail_cycles >= cfg.sensor_mismatch_cycles:
        return EventCode.SENSOR_FAULT
    if st.mismatch_cycles >= cfg.sensor_mismatch_cycles:
        return EventCode.SENSOR_MISMATCH
    return None


def _fault_code(faults: frozenset[str]) -> EventCode:
    """The most specific known code among the module's faults (stable order)."""
    for code in EVENT_CODES:
        if code in faults and code in MODULE_FAULT_CODES:
            return code
    return EventCode.MODULE_FAULT


# --- comms-loss fail-safe ------------------------------------------------------------------


def _supervise_comms(
    st: LawState, obs: Observation, cfg: ControlSection, events: list[EventCode]
) -> LawState:
    now = obs.now_s
    contact = min(obs.last_csms_contact_s, now)  # a contact from the future is not trusted
    if st.failsafe:
        return _await_recovery(st, obs, cfg, contact, events)
    silence = now - contact
    if silence >= open_after_s(cfg):
        return _open_at_deadline(st, obs, cfg, events)
    due = silence >= ramp_start_s(st.commanded_w, cfg, st.settle.settle_s)
    if st.comms_ramp:
        # The lead shrinks as fast as the ramp eats the power: only a newer contact ends it.
        if due or contact <= st.ramp_contact_s:
            return st
        if st.contactor_closed:  # an open contactor stays open during the ramp: no claim
            events.append(EventCode.COMMS_LOSS_RECOVERED)
        return replace(st, comms_ramp=False)
    if not due:
        return st
    if st.contactor_closed:
        events.append(EventCode.COMMS_LOSS_RAMP)
    return replace(st, comms_ramp=True, ramp_contact_s=contact)


def _open_at_deadline(
    st: LawState, obs: Observation, cfg: ControlSection, events: list[EventCode]
) -> LawState:
    """The 30 s rule rules: the contactor opens now; the events say how, and only when it
    really was closed."""
    if st.contactor_closed:
        if current_a(obs.measurement) > cfg.contactor_open_max_a:
            events.append(EventCode.COMMS_LOSS_OPEN_UNDER_LOAD)
        events.append(EventCode.COMMS_LOSS_FAILSAFE)
    return replace(
        st, failsafe=True, comms_ramp=False, failsafe_since_s=obs.now_s, contact_back_s=None
    )


def _await_recovery(
    st: LawState, obs: Observation, cfg: ControlSection, contact: float, events: list[EventCode]
) -> LawState:
    back = st.contact_back_s
    if back is None:
        if contact <= st.failsafe_since_s:
            return st
        back = contact
    now = obs.now_s
    fresh = now - contact < cfg.comms_loss_timeout_s
    lease = obs.lease
    if fresh and lease is not None and lease.received_s >= back and now < lease.deadline_s:
        events.append(EventCode.FAILSAFE_CLEARED)
        return replace(st, failsafe=False, contact_back_s=None)
    return st if back == st.contact_back_s else replace(st, contact_back_s=back)


# --- informational edges -------------------------------------------------------------------


def _note_edges(
    st: LawState, obs: Observation, cfg: ControlSection, events: list[EventCode]
) -> LawState:
    lease = obs.lease
    expired_s = st.expired_lease_s
    if lease is not None and obs.now_s >= lease.deadline_s and expired_s != lease.received_s:
        events.append(EventCode.LEASE_EXPIRED)
        expired_s = lease.received_s
    m = obs.measurement
    if m is None:
        return st if expired_s == st.expired_lease_s else replace(st, expired_lease_s=expired_s)
    band = cfg.soc_ramp_band_pct
    floor = m.soc_pct is None or m.soc_pct <= cfg.soc_min_pct + cfg.soc_margin_pct + band
    ceiling = m.soc_pct is not None and m.soc_pct >= cfg.soc_max_pct - band
    if floor and not st.soc_floor_active and m.soc_pct is not None:
        events.append(EventCode.SOC_FLOOR_REACHED)
    if ceiling and not st.soc_ceiling_active:
        events.append(EventCode.SOC_CEILING_REACHED)
    if st.ev_connected and not m.ev_connected:
        events.append(EventCode.EV_DISCONNECTED)
    new = (expired_s, floor, ceiling, m.ev_connected)
    if new == (st.expired_lease_s, st.soc_floor_active, st.soc_ceiling_active, st.ev_connected):
        return st
    return replace(
        st,
        expired_lease_s=expired_s,
        soc_floor_active=floor,
        soc_ceiling_active=ceiling,
        ev_connected=m.ev_connected,
    )
