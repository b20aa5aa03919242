"""The comms-loss envelope with an injected clock: the contactor opens at the last step before
``comms_loss_timeout_s`` after the last contact (so within one period of it), at ~0 A,
whatever the power, the ramp rate and the module's lag; a shorter stall derates at most and
recovers; ramp start and contactor open are separate events at their own times."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.gateway.control.control_harness import Timeline, measurement
from v2g_gateway.control.comms_loss import current_a, ramp_start_s
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.law import EvLimits
from v2g_gateway.control.ports import StageRatings

TIMEOUT_S = 30.0
MAX_A = 0.5  # the default contactor_open_max_a
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Outage:
    """What one outage did, ages counted from the last contact."""

    events: list[tuple[float, EventCode]]
    opened_after_s: float | None
    current_at_open_a: float | None
    closed_before_open: bool

    def ages(self, code: EventCode) -> list[float]:
        return [age for age, c in self.events if c == code]


def timeline(power_w: float, ramp_w_per_s: float, period_s: float, tau_s: float) -> Timeline:
    """Contact, a long lease at ``power_w``, ramped up and held until the module settled."""
    cfg = ControlSection(
        period_s=period_s,
        ramp_w_per_s=ramp_w_per_s,
        comms_loss_timeout_s=TIMEOUT_S,
        site_max_import_w=22000.0,
        site_max_export_w=22000.0,
    )
    tl = Timeline(
        cfg=cfg,
        ratings=StageRatings(22000.0, 22000.0),
        ev=EvLimits(22000.0, 22000.0),
        module_tau_s=tau_s,
    )
    tl.grant(power_w, 3600.0)
    for _ in range(round((abs(power_w) / ramp_w_per_s + 6.0) / period_s)):
        tl.contact()
        tl.advance(period_s)
    assert tl.state.commanded_w == power_w
    assert tl.state.contactor_closed
    return tl


def run_outage(tl: Timeline, seconds: float, **advance: object) -> Outage:
    """No contact for ``seconds``; the lease stays valid (the station's stored profile)."""
    period = tl.cfg.period_s
    out = Outage([], None, None, True)
    for _ in range(round(seconds / period)):
        was_closed = tl.state.contactor_closed
        step = tl.advance(period, **advance)  # type: ignore[arg-type]
        age = tl.now - tl.last_contact_s
        out.events += [(age, code) for code in step.events]
        if out.opened_after_s is None:
            if was_closed and not step.contactor_closed:
                assert tl.last_obs is not None
                out.opened_after_s = age
                out.current_at_open_a = current_a(tl.last_obs.measurement)
            elif not step.contactor_closed:
                out.closed_before_open = False
    return out


def settle_needed_s(tau_s: float, ramp_w_per_s: float) -> float:
    """First-order lag behind a ramp: error tau * rate, then down to MAX_A at 230 V."""
    following_w = tau_s * ramp_w_per_s
    return tau_s * math.log(max(following_w / (MAX_A * 230.0), 1.0))


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """(power W, ramp W/s, period s, module tau s) whose ramp fits in half the timeout."""
    magnitude = draw(st.floats(min_value=500.0, max_value=22000.0))
    power = magnitude * draw(st.sampled_from([-1.0, 1.0]))
    period = draw(st.sampled_from([0.05, 0.1, 0.2]))
    tau = draw(st.sampled_from([0.0, 0.2, 0.8]) | st.floats(min_value=0.0, max_value=0.8))
    # the slowest ramp that still fits: |P|/r + settle + 2 periods + margin <= T/2 (settle
    # <= 4 s, margin 1 s)
    ramp_min = magnitude / (TIMEOUT_S / 2 - 4.0 - 2 * period - 1.0)
    ramp = draw(st.floats(min_value=max(ramp_min, 300.0), max_value=10000.0))
    return power, ramp, period, tau


@SETTINGS
@given(envelope=envelopes())
@example(envelope=(-5000.0, 2000.0, 0.1, 0.8))
@example(envelope=(-11000.0, 2000.0, 0.1, 0.8))
@example(envelope=(-22000.0, 2000.0, 0.1, 0.8))
@example(envelope=(-11000.0, 10000.0, 0.2, 0.8))
def test_contactor_opens_at_zero_current_within_one_period_of_the_timeout(
    envelope: tuple[float, float, float, float],
) -> None:
    power, ramp, period, tau = envelope
    assert settle_needed_s(tau, ramp) + period <= 4.0  # the envelope's assumption above
    tl = timeline(power, ramp, period, tau)
    outage = run_outage(tl, TIMEOUT_S + 2.0)
    assert outage.closed_before_open
    assert outage.opened_after_s is not None
    assert TIMEOUT_S - period - 1e-9 <= outage.opened_after_s <= TIMEOUT_S + 1e-9
    assert outage.current_at_open_a is not None
    assert outage.current_at_open_a <= MAX_A
    [ramp_age] = outage.ages(EventCode.COMMS_LOSS_RAMP)
    assert outage.ages(EventCode.COMMS_LOSS_FAILSAFE) == [outage.opened_after_s]
    assert TIMEOUT_S / 2 - 1e-9 <= ramp_age <= TIMEOUT_S - abs(power) / ramp
    assert outage.ages(EventCode.COMMS_LOSS_OPEN_UNDER_LOAD) == []


@SETTINGS
@given(envelope=envelopes(), stall_s=st.floats(min_value=1.0, max_value=25.0))
@example(envelope=(-22000.0, 2000.0, 0.1, 0.8), stall_s=25.0)
@example(envelope=(-500.0, 2000.0, 0.1, 0.0), stall_s=25.0)
def test_a_stall_of_25s_never_opens_and_the_output_recovers(
    envelope: tuple[float, float, float, float], stall_s: float
) -> None:
    power, ramp, period, tau = envelope
    tl = timeline(power, ramp, period, tau)
    outage = run_outage(tl, stall_s)
    tl.contact()
    back = run_outage(tl, abs(power) / ramp + 2 * period)  # contact back: ramp up again
    assert outage.opened_after_s is None
    assert outage.closed_before_open
    assert back.opened_after_s is None
    assert back.closed_before_open
    assert outage.ages(EventCode.COMMS_LOSS_FAILSAFE) == []
    ramped = bool(outage.ages(EventCode.COMMS_LOSS_RAMP))
    assert [c for _, c in back.events] == ([EventCode.COMMS_LOSS_RECOVERED] if ramped else [])
    assert tl.state.commanded_w == power


def test_ramp_start_and_contactor_open_are_separate_events_at_their_own_times() -> None:
    tl = timeline(-11000.0, 2000.0, 0.1, 0.8)
    settle_s = tl.state.settle.settle_s
    assert settle_s >= settle_needed_s(0.8, 2000.0)  # the loop measured the module's lag
    start_s = ramp_start_s(-11000.0, tl.cfg, settle_s)
    outage = run_outage(tl, 31.0)
    [ramp_age] = outage.ages(EventCode.COMMS_LOSS_RAMP)
    [open_age] = outage.ages(EventCode.COMMS_LOSS_FAILSAFE)
    assert start_s <= ramp_age <= start_s + 0.1 + 1e-9
    assert TIMEOUT_S - 0.1 - 1e-9 <= open_age <= TIMEOUT_S + 1e-9
    assert open_age - ramp_age >= 5.5  # 11 kW at 2 kW/s, then the module's settle time
    powers = [(t - tl.last_contact_s, o.setpoint_w) for t, o in tl.outputs[-310:]]
    assert all(p == -11000.0 for age, p in powers if age < ramp_age - 1e-9)
    assert all(p == 0.0 for age, p in powers if age >= ramp_age + 5.5 + 0.1)


def test_the_measured_lag_starts_the_ramp_earlier() -> None:
    lagging = run_outage(timeline(-5000.0, 2000.0, 0.1, 0.8), 31.0)
    prompt = run_outage(timeline(-5000.0, 2000.0, 0.1, 0.0), 31.0)
    [lagging_ramp] = lagging.ages(EventCode.COMMS_LOSS_RAMP)
    [prompt_ramp] = prompt.ages(EventCode.COMMS_LOSS_RAMP)
    assert lagging_ramp < prompt_ramp - 0.5
    assert lagging.current_at_open_a is not None
    assert lagging.current_at_open_a <= MAX_A


def test_a_module_that_does_not_follow_opens_at_the_deadline_and_says_so() -> None:
    tl = timeline(-3000.0, 2000.0, 0.1, 0.0)
    stuck = measurement(power_w=-3000.0)
    outage = run_outage(tl, 31.0, m=stuck, sensor_w=-3000.0)
    assert outage.opened_after_s is not None
    assert TIMEOUT_S - 0.1 - 1e-9 <= outage.opened_after_s <= TIMEOUT_S + 1e-9
    assert outage.current_at_open_a == pytest.approx(3000.0 / 230.0)
    [under_load] = outage.ages(EventCode.COMMS_LOSS_OPEN_UNDER_LOAD)
    assert outage.ages(EventCode.COMMS_LOSS_FAILSAFE) == [under_load] == [outage.opened_after_s]


def test_a_ramp_too_long_for_half_the_timeout_still_opens_at_the_deadline() -> None:
    tl = timeline(-22000.0, 500.0, 0.1, 0.0)  # 44 s of ramp cannot fit: the 30 s rule rules
    outage = run_outage(tl, 31.0)
    [ramp_age] = outage.ages(EventCode.COMMS_LOSS_RAMP)
    assert ramp_age == pytest.approx(TIMEOUT_S / 2, abs=0.1 + 1e-9)
    assert outage.opened_after_s is not None
    assert TIMEOUT_S - 0.1 - 1e-9 <= outage.opened_after_s <= TIMEOUT_S + 1e-9
    assert outage.ages(EventCode.COMMS_LOSS_OPEN_UNDER_LOAD) == [outage.opened_after_s]
    assert tl.state.commanded_w == 0.0


def test_no_open_is_claimed_when_the_contactor_was_already_open() -> None:
    tl = Timeline(cfg=ControlSection(comms_loss_timeout_s=TIMEOUT_S))  # no lease: never closed
    outage = run_outage(tl, 31.0)
    assert tl.state.failsafe
    assert not tl.state.contactor_closed
    assert outage.events == []


def test_a_lease_during_the_ramp_does_not_close_the_contactor_only_to_open_it() -> None:
    tl = Timeline(cfg=ControlSection(comms_loss_timeout_s=TIMEOUT_S))
    run_outage(tl, 29.0)
    assert tl.state.comms_ramp
    tl.grant(-3000.0, 600.0)  # a lease without contact (the station's stored profile)
    outage = run_outage(tl, 2.0)
    assert not tl.state.contactor_closed
    assert outage.events == []


@pytest.mark.parametrize(
    ("power_w", "ramp_w_per_s", "period_s", "settle_s", "start_s"),
    [
        # the open (30 s - one period) less: ramp + settle + 2 periods + comms_loss_margin_s
        (-5000.0, 2000.0, 0.1, 0.0, 29.9 - (2.5 + 1.0 + 0.2 + 1.0)),  # module_settle_s: floor
        (11000.0, 2000.0, 0.1, 2.5, 29.9 - (5.5 + 2.5 + 0.2 + 1.0)),  # measured settle counts
        (-11000.0, 2000.0, 0.05, 9.0, 29.95 - (5.5 + 5.0 + 0.1 + 1.0)),  # up to settle_max_s
        (-22000.0, 1000.0, 0.1, 0.0, 15.0),  # never before half the timeout
        (0.0, 2000.0, 0.2, 0.0, 29.8 - (1.0 + 0.4 + 1.0)),
    ],
)
def test_ramp_start(
    power_w: float, ramp_w_per_s: float, period_s: float, settle_s: float, start_s: float
) -> None:
    cfg = ControlSection(period_s=period_s, ramp_w_per_s=ramp_w_per_s)
    assert ramp_start_s(power_w, cfg, settle_s) == pytest.approx(start_s)
