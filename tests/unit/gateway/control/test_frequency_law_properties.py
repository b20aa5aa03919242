"""Frequency response through the real control law, tick by tick (injected clock): the
setpoint is baseline + curve at the measured frequency within every clamp, monotone in
frequency, untouched inside the dead-band, never past the SoC floor or ceiling; frequency
moves at the module's ramp, and the comms-loss fail-safe and lease expiry still end it."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.gateway.control.control_harness import EV, RATINGS, measurement
from tests.unit.gateway.control.test_control_law_properties import (
    SETTINGS,
    Limits,
    floor_pct,
    limits,
)
from tests.unit.gateway.control.test_frequency_curve import curves, curves_with_deadband
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.control.law import LawOutput, LawState, Lease, Observation, initial_state, step

EPS_W = 1e-6
#: A module ramp no tick can exhaust: the setpoint must then be the clamped curve value.
UNLIMITED = 1e12
baselines = st.floats(min_value=-11000.0, max_value=11000.0)
freqs = st.floats(min_value=47.5, max_value=52.5)
socs = st.floats(min_value=0.0, max_value=100.0) | st.sampled_from([20.0, 22.0, 23.0, 99.0, 100.0])
DC_CURVE = FreqWattCurve.from_points(
    [(49.5, -10000.0), (49.985, 0.0), (50.015, 0.0), (50.5, 10000.0)]
)


def expected_w(lim: Limits, lease: Lease, freq_hz: float, soc: float) -> float:
    """The clamped curve value, computed from the rules rather than by the law."""
    cfg = lim.cfg
    charge, discharge = lim.max_charge_w, lim.max_discharge_w
    if soc <= floor_pct(cfg) + cfg.soc_ramp_band_pct:  # floor and its ramp band
        discharge = 0.0
    if soc >= cfg.soc_max_pct - cfg.soc_ramp_band_pct:  # ceiling and its ramp band
        charge = 0.0
    response_w = 0.0 if lease.curve is None else lease.curve.value_w(freq_hz)
    return min(max(lease.power_w + response_w, -discharge), charge)


def tick(
    state: LawState, lim: Limits, lease: Lease, now: float, freq_hz: float, soc: float
) -> LawOutput:
    m = measurement(power_w=state.commanded_w, soc_pct=soc, grid_freq_hz=freq_hz)
    obs = Observation(now, m, state.commanded_w, now, lease)
    return step(state, obs, lim.cfg, lim.ratings, lim.ev)


@SETTINGS
@given(
    lim=limits(),
    curve=curves(),
    baseline=baselines,
    ticks=st.lists(st.tuples(freqs, socs), min_size=1, max_size=100),
)
def test_setpoint_is_the_curve_value_within_the_clamps_at_every_tick(
    lim: Limits, curve: FreqWattCurve, baseline: float, ticks: list[tuple[float, float]]
) -> None:
    lim = replace(lim, cfg=lim.cfg.model_copy(update={"freq_ramp_w_per_s": UNLIMITED}))
    now = 0.0
    lease = Lease(baseline, 1e9, now, curve)
    state = tick(initial_state(now), lim, lease, now, 50.0, 50.0).state  # closes the contactor
    for freq_hz, soc in ticks:
        now += lim.cfg.period_s
        out = tick(state, lim, lease, now, freq_hz, soc)
        state = out.state
        assert out.setpoint_w == pytest.approx(expected_w(lim, lease, freq_hz, soc), abs=EPS_W)
        assert out.setpoint_w >= 0.0 or soc > floor_pct(lim.cfg)
        assert out.setpoint_w <= 0.0 or soc < lim.cfg.soc_max_pct


@SETTINGS
@given(
    lim=limits(),
    curve=curves(),
    baseline=baselines,
    ramp=st.floats(min_value=1000.0, max_value=200000.0),
    ticks=st.lists(st.tuples(freqs, socs), min_size=1, max_size=100),
)
def test_with_the_module_ramp_each_tick_moves_toward_the_curve_and_never_past_soc_limits(
    lim: Limits,
    curve: FreqWattCurve,
    baseline: float,
    ramp: float,
    ticks: list[tuple[float, float]],
) -> None:
    cfg = lim.cfg.model_copy(update={"freq_ramp_w_per_s": ramp})
    lim = replace(lim, cfg=cfg)
    now = 0.0
    lease = Lease(baseline, 1e9, now, curve)
    state = tick(initial_state(now), lim, lease, now, 50.0, 50.0).state
    for freq_hz, soc in ticks:
        now += cfg.period_s
        previous = state.commanded_w
        out = tick(state, lim, lease, now, freq_hz, soc)
        state = out.state
        target = expected_w(lim, lease, freq_hz, soc)
        # Either there, or one module-ramp step closer (a hard limit may cut at once).
        reachable = abs(target - previous) <= ramp * cfg.period_s + EPS_W
        if reachable:
            assert out.setpoint_w == pytest.approx(target, abs=EPS_W)
        else:
            assert abs(out.setpoint_w - target) < abs(previous - target) + EPS_W
        assert out.setpoint_w >= 0.0 or soc > floor_pct(cfg)
        assert out.setpoint_w <= 0.0 or soc < cfg.soc_max_pct
        assert -lim.max_discharge_w - EPS_W <= out.setpoint_w <= lim.max_charge_w + EPS_W


def settled_w(lim: Limits, lease: Lease, freq_hz: float) -> float:
    now = 0.0
    state = initial_state(now)
    for _ in range(3):  # close, then one unlimited step to the value
        now += lim.cfg.period_s
        state = tick(state, lim, lease, now, freq_hz, 50.0).state
    return state.commanded_w


@SETTINGS
@given(
    lim=limits(),
    curve=curves(monotone=True),
    baseline=baselines,
    pair=st.tuples(freqs, freqs),
)
def test_response_is_monotone_in_frequency_for_a_monotone_curve(
    lim: Limits, curve: FreqWattCurve, baseline: float, pair: tuple[float, float]
) -> None:
    lim = replace(lim, cfg=lim.cfg.model_copy(update={"freq_ramp_w_per_s": UNLIMITED}))
    low, high = sorted(pair)
    lease = Lease(baseline, 1e9, 0.0, curve)
    assert settled_w(lim, lease, low) <= settled_w(lim, lease, high)


@SETTINGS
@given(
    lim=limits(),
    curve=curves_with_deadband(),
    baseline=baselines,
    where=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50),
)
def test_no_response_inside_the_deadband(
    lim: Limits, curve: FreqWattCurve, baseline: float, where: list[float]
) -> None:
    lim = replace(lim, cfg=lim.cfg.model_copy(update={"freq_ramp_w_per_s": UNLIMITED}))
    band = curve.deadband_hz()
    assert band is not None
    lease = Lease(baseline, 1e9, 0.0, curve)
    baseline_only = expected_w(lim, replace(lease, curve=None), 50.0, 50.0)
    for fraction in where:
        freq = min(band[0] + fraction * (band[1] - band[0]), band[1])
        assert settled_w(lim, lease, freq) == baseline_only


# --- cases ---------------------------------------------------------------------------------

DC = Limits(
    ControlSection(period_s=0.05, ramp_w_per_s=2000.0, freq_ramp_w_per_s=50000.0), RATINGS, EV
)


def run_step_response(lim: Limits, lease: Lease, *, seconds: float) -> list[float]:
    """50.00 Hz until the output is at the baseline, then 49.50 Hz; setpoints after the step."""
    now, state = 0.0, initial_state(0.0)
    for _ in range(200):
        now += lim.cfg.period_s
        state = tick(state, lim, lease, now, 50.0, 60.0).state
    assert state.commanded_w == lease.power_w
    out = []
    for _ in range(round(seconds / lim.cfg.period_s)):
        now += lim.cfg.period_s
        state = tick(state, lim, lease, now, 49.5, 60.0).state
        out.append(state.commanded_w)
    return out


def test_a_frequency_step_moves_at_the_module_ramp_not_the_comfort_ramp() -> None:
    lease = Lease(2000.0, 1e9, 0.0, DC_CURVE)
    powers = run_step_response(DC, lease, seconds=1.0)
    # 10 kW to go at 50 kW/s, 2.5 kW per 50 ms tick: there after 4 ticks (0.2 s), not 5 s.
    assert powers[:4] == pytest.approx([-500.0, -3000.0, -5500.0, -8000.0])
    assert powers[-1] == -8000.0
    comfort = replace(DC, cfg=DC.cfg.model_copy(update={"freq_ramp_w_per_s": 2000.0}))
    assert run_step_response(comfort, lease, seconds=1.0)[-1] == pytest.approx(0.0, abs=1e-6)


def without_contact(seconds: float) -> list[tuple[float, LawOutput]]:
    """A live frequency response at 49.5 Hz whose CSMS was last heard at t = 0."""
    cfg = DC.cfg
    lease = Lease(0.0, 1e9, 0.0, DC_CURVE)
    now, state, seen = 0.0, initial_state(0.0), []
    while now < seconds:
        now += cfg.period_s
        m = measurement(power_w=state.commanded_w, soc_pct=60.0, grid_freq_hz=49.5)
        out = step(state, Observation(now, m, state.commanded_w, 0.0, lease), cfg, RATINGS, EV)
        state = out.state
        seen.append((now, out))
    return seen


def test_frequency_response_does_not_outlive_the_link() -> None:
    seen = without_contact(DC.cfg.comms_loss_timeout_s + 10.0)
    assert EventCode.COMMS_LOSS_FAILSAFE in [code for _, out in seen for code in out.events]
    last = seen[-1][1]
    assert last.setpoint_w == 0.0
    assert not last.contactor_closed


def test_frequency_response_ends_with_its_lease() -> None:
    lim = DC
    lease = Lease(0.0, 2.0, 0.0, DC_CURVE)
    now, state = 0.0, initial_state(0.0)
    seen = []
    while now < 10.0:
        now += lim.cfg.period_s
        state = tick(state, lim, lease, now, 49.5, 60.0).state
        seen.append((now, state.commanded_w))
    assert min(p for _, p in seen) == pytest.approx(-10000.0)
    assert seen[-1][1] == 0.0
    # After expiry the drop to 0 W moves at the comfort ramp (2 kW/s), not the module's.
    after = [p for t, p in seen if t > 2.0 and p != 0.0]
    moves = [b - a for a, b in itertools.pairwise(after)]
    assert moves
    assert all(0.0 < d <= 2000.0 * lim.cfg.period_s + EPS_W for d in moves)


def test_the_comms_loss_ramp_of_a_frequency_response_moves_at_the_comfort_ramp() -> None:
    """The comms-loss envelope times its ramp on ``ramp_w_per_s``: a response being wound
    down for comms loss must not take the module's ramp (nor outlive the 30 s)."""
    cfg = DC.cfg
    seen = without_contact(cfg.comms_loss_timeout_s + 1.0)
    winding = [o.setpoint_w for t, o in seen if t > 1.0 and o.setpoint_w > -10000.0]
    moves = [b - a for a, b in itertools.pairwise(winding)]
    assert moves
    assert max(moves) <= 2000.0 * 2 * cfg.period_s + EPS_W  # comfort ramp, 2 periods' credit
    assert all(not o.contactor_closed for t, o in seen if t >= cfg.comms_loss_timeout_s)
