"""aFRR through the station's mapping and the real control law, tick by tick (injected time):
the setpoint is baseline + the signal curve's value, within the period's limits and every
clamp of the law, monotone in the signal for a monotone curve, never past the SoC floor or
ceiling; a stale or dropped signal leaves the baseline alone (the LocalFrequency properties'
counterpart, ``tests/unit/gateway/control/test_frequency_law_properties.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.gateway.control.control_harness import measurement
from tests.unit.gateway.control.test_control_law_properties import (
    SETTINGS,
    Limits,
    floor_pct,
    limits,
)
from v2g_gateway.control.law import LawState, Lease, Observation, initial_state, step
from v2g_gateway.station.afrr import AfrrSignals, afrr_target_w
from v2g_gateway.station.signal_profiles import SignalWattCurve

EPS_W = 1e-6
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VALID_S = 12.0
signals = st.integers(min_value=-1000, max_value=1000)
watts = st.floats(min_value=-22000.0, max_value=22000.0)
baselines = st.floats(min_value=-11000.0, max_value=11000.0)
socs = st.floats(min_value=0.0, max_value=100.0) | st.sampled_from([20.0, 22.0, 99.0, 100.0])
limit_pairs = st.tuples(
    st.none() | st.floats(min_value=0.0, max_value=22000.0),
    st.none() | st.floats(min_value=-22000.0, max_value=0.0),
)


@st.composite
def signal_curves(draw: st.DrawFn, *, monotone: bool = False) -> SignalWattCurve:
    xs = sorted(draw(st.sets(signals, min_size=2, max_size=20)))
    powers = draw(st.lists(watts, min_size=len(xs), max_size=len(xs)))
    if monotone:
        powers.sort()
    return SignalWattCurve(tuple(float(x) for x in xs), tuple(powers))


def unlimited(lim: Limits) -> Limits:
    """A comfort ramp no tick can exhaust: the setpoint must then be the clamped target."""
    return replace(lim, cfg=lim.cfg.model_copy(update={"ramp_w_per_s": 1e12}))


def expected_w(lim: Limits, target_w: float, soc: float) -> float:
    """The law's clamps, computed from the rules rather than by the law."""
    cfg = lim.cfg
    charge, discharge = lim.max_charge_w, lim.max_discharge_w
    if soc <= floor_pct(cfg) + cfg.soc_ramp_band_pct:
        discharge = 0.0
    if soc >= cfg.soc_max_pct - cfg.soc_ramp_band_pct:
        charge = 0.0
    return min(max(target_w, -discharge), charge)


def tick(state: LawState, lim: Limits, power_w: float, now_s: float, soc: float) -> LawState:
    m = measurement(power_w=state.commanded_w, soc_pct=soc)
    obs = Observation(now_s, m, state.commanded_w, now_s, Lease(power_w, now_s + 2.0, now_s))
    return step(state, obs, lim.cfg, lim.ratings, lim.ev).state


@SETTINGS
@given(
    lim=limits(),
    curve=signal_curves(),
    baseline=baselines,
    bounds=limit_pairs,
    stream=st.lists(st.tuples(signals, socs, st.floats(0.5, 8.0)), min_size=1, max_size=60),
)
def test_setpoint_is_baseline_plus_curve_within_every_clamp_at_every_tick(
    lim: Limits,
    curve: SignalWattCurve,
    baseline: float,
    bounds: tuple[float | None, float | None],
    stream: list[tuple[int, float, float]],
) -> None:
    lim = unlimited(lim)
    limit_w, discharge_limit_w = bounds
    afrr = AfrrSignals(valid_for_s=VALID_S)
    now_s = 0.0
    state = tick(initial_state(now_s), lim, 0.0, now_s, 50.0)  # closes the contactor
    for signal, soc, gap_s in stream:
        now_s += gap_s
        now = T0 + timedelta(seconds=now_s)
        afrr.accept(signal, now, now=now)
        response_w = afrr.response_w(curve, now=now)
        assert response_w == curve.value_w(signal)
        target = afrr_target_w(
            baseline, response_w, limit_w=limit_w, discharge_limit_w=discharge_limit_w
        )
        state = tick(state, lim, target, now_s, soc)
        bounded = baseline + curve.value_w(signal)
        if limit_w is not None:
            bounded = min(bounded, limit_w)
        if discharge_limit_w is not None:
            bounded = max(bounded, discharge_limit_w)
        assert state.commanded_w == pytest.approx(expected_w(lim, bounded, soc), abs=EPS_W)
        assert state.commanded_w >= 0.0 or soc > floor_pct(lim.cfg)
        assert state.commanded_w <= 0.0 or soc < lim.cfg.soc_max_pct


def settled_w(lim: Limits, curve: SignalWattCurve, baseline: float, signal: int) -> float:
    afrr = AfrrSignals(valid_for_s=VALID_S)
    afrr.accept(signal, T0, now=T0)
    target = afrr_target_w(
        baseline, afrr.response_w(curve, now=T0), limit_w=None, discharge_limit_w=None
    )
    state, now_s = initial_state(0.0), 0.0
    for _ in range(3):  # close, then one unlimited step to the value
        now_s += lim.cfg.period_s
        state = tick(state, lim, target, now_s, 50.0)
    return state.commanded_w


@SETTINGS
@given(
    lim=limits(),
    curve=signal_curves(monotone=True),
    baseline=baselines,
    pair=st.tuples(signals, signals),
)
def test_response_is_monotone_in_the_signal_for_a_monotone_curve(
    lim: Limits, curve: SignalWattCurve, baseline: float, pair: tuple[int, int]
) -> None:
    lim = unlimited(lim)
    low, high = sorted(pair)
    assert settled_w(lim, curve, baseline, low) <= settled_w(lim, curve, baseline, high)


@SETTINGS
@given(
    curve=signal_curves(),
    signal=signals,
    late_s=st.floats(min_value=VALID_S, max_value=3600.0),
)
def test_a_stale_or_dropped_signal_adds_nothing(
    curve: SignalWattCurve, signal: int, late_s: float
) -> None:
    afrr = AfrrSignals(valid_for_s=VALID_S)
    afrr.accept(signal, T0, now=T0)
    assert afrr.response_w(curve, now=T0 + timedelta(seconds=late_s)) == 0.0
    afrr.accept(signal, T0 + timedelta(seconds=late_s), now=T0 + timedelta(seconds=late_s))
    afrr.drop()
    assert afrr.response_w(curve, now=T0 + timedelta(seconds=late_s)) == 0.0
