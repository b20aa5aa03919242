"""Planner properties (hypothesis): sums, limits, floors, headroom, merit order."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.core.dispatch.scripted_fleet import T0
from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.model import Algorithm, Direction, SessionKey
from vpp_core.dispatch.planner import DispatchPlan, SessionColumns, plan_dispatch, session_caps
from vpp_core.dispatch.ports import SessionState

TOL = 1e-6


@st.composite
def columns(draw: st.DrawFn, *, with_min: bool = True, with_limits: bool = True) -> SessionColumns:
    n = draw(st.integers(1, 30))
    max_w = np.array(draw(st.lists(st.floats(0, 22_000), min_size=n, max_size=n)))
    frac = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    min_w = max_w * np.array(frac) * 0.5 if with_min else np.zeros(n)
    usable = np.array(
        draw(st.lists(st.one_of(st.floats(0, 40_000), st.just(np.inf)), min_size=n, max_size=n))
    )
    n_st = draw(st.integers(1, max(1, n)))
    station_idx = np.array(
        draw(st.lists(st.integers(0, n_st - 1), min_size=n, max_size=n)), dtype=np.intp
    )
    site_of_station = np.array(draw(st.lists(st.integers(0, 2), min_size=n_st, max_size=n_st)))
    limits = st.one_of(st.just(np.inf), st.floats(0, 40_000)) if with_limits else st.just(np.inf)
    return SessionColumns(
        direction=draw(st.sampled_from(Direction)),
        keys=tuple(SessionKey(f"S{station_idx[i]}", i, f"tx{i}") for i in range(n)),
        max_w=max_w,
        min_w=min_w,
        usable_wh=usable,
        merit=np.array(draw(st.lists(st.floats(0, 2), min_size=n, max_size=n))),
        station_idx=station_idx,
        station_limit_w=np.array(draw(st.lists(limits, min_size=n_st, max_size=n_st))),
        site_idx=site_of_station[station_idx].astype(np.intp),
        site_limit_w=np.array(draw(st.lists(limits, min_size=3, max_size=3))),
    )


plan_args = {
    "target_frac": st.floats(0, 1.3),
    "headroom": st.floats(0.05, 1.0),
    "duration_s": st.floats(60, 7200),
    "algorithm": st.sampled_from(["proportional", "merit_order"]),
}


def _plan(
    cols: SessionColumns,
    target_frac: float,
    headroom: float,
    duration_s: float,
    algorithm: Algorithm,
) -> DispatchPlan:
    total = float(session_caps(cols, duration_s=duration_s).sum())
    target = cols.direction.sign * target_frac * max(total, 1.0)
    return plan_dispatch(
        cols, target_w=target, duration_s=duration_s, headroom=headroom, algorithm=algorithm
    )


@settings(max_examples=150, deadline=None)
@given(cols=columns(), **plan_args)
def test_no_session_exceeds_its_limits_or_floor_and_groups_hold(
    cols: SessionColumns,
    target_frac: float,
    headroom: float,
    duration_s: float,
    algorithm: Algorithm,
) -> None:
    plan = _plan(cols, target_frac, headroom, duration_s, algorithm)
    mag = plan.allocation_w * cols.direction.sign
    assert (mag >= 0).all(), "allocations have the dispatch direction's sign"
    assert (mag <= cols.max_w + TOL).all()
    assert (mag * duration_s / 3600.0 <= cols.usable_wh * (1 + 1e-9) + TOL).all(), "energy floor"
    assert ((mag == 0) | (mag >= cols.min_w - TOL)).all(), "0 or at least the minimum power"
    per_station = np.bincount(cols.station_idx, weights=mag, minlength=cols.station_limit_w.size)
    assert (per_station <= cols.station_limit_w * (1 + 1e-9) + TOL).all()
    per_site = np.bincount(cols.site_idx, weights=mag, minlength=cols.site_limit_w.size)
    assert (per_site <= cols.site_limit_w * (1 + 1e-9) + TOL).all()
    assert mag.sum() <= plan.headroom * plan.available_w * (1 + 1e-9) + TOL, "headroom kept"
    assert mag.sum() <= abs(plan.requested_w) * (1 + 1e-9) + TOL, "never above target"


@settings(max_examples=150, deadline=None)
@given(cols=columns(with_min=False), **plan_args)
def test_allocations_sum_to_target_or_feasible_maximum(
    cols: SessionColumns,
    target_frac: float,
    headroom: float,
    duration_s: float,
    algorithm: Algorithm,
) -> None:
    plan = _plan(cols, target_frac, headroom, duration_s, algorithm)
    goal = min(abs(plan.requested_w), plan.deployable_w)
    assert abs(abs(plan.committed_w) - goal) <= 1e-6 * max(goal, 1.0)
    assert abs(plan.committed_w - plan.allocation_w.sum()) <= 1e-6 * max(goal, 1.0)
    short = abs(plan.requested_w) - goal
    assert (plan.shortfall_w > 0) == (short > 1e-6 * max(1.0, abs(plan.requested_w)))
    if plan.shortfall_w:
        assert plan.shortfall_reason


@settings(max_examples=120, deadline=None)
@given(cols=columns(), **plan_args)
def test_with_minimum_powers_the_sum_is_exact_or_the_shortfall_is_explained(
    cols: SessionColumns,
    target_frac: float,
    headroom: float,
    duration_s: float,
    algorithm: Algorithm,
) -> None:
    plan = _plan(cols, target_frac, headroom, duration_s, algorithm)
    goal = min(abs(plan.requested_w), plan.deployable_w)
    got = abs(plan.committed_w)
    assert got <= goal * (1 + 1e-9) + TOL
    if goal - got > 1e-6 * max(goal, 1.0):
        assert plan.shortfall_reason is not None


@settings(max_examples=150, deadline=None)
@given(
    cols=columns(with_min=False, with_limits=False),
    target_frac=st.floats(0, 1),
    duration_s=st.floats(60, 7200),
)
def test_merit_order_fills_higher_merit_first(
    cols: SessionColumns, target_frac: float, duration_s: float
) -> None:
    plan = _plan(cols, target_frac, 1.0, duration_s, "merit_order")
    cap = session_caps(cols, duration_s=duration_s)
    mag = plan.allocation_w * cols.direction.sign
    used = np.flatnonzero(mag > 0)
    if used.size == 0:
        return
    lowest_used_merit = cols.merit[used].min()
    above = np.flatnonzero((cols.merit > lowest_used_merit) & (cap > 0))
    assert np.allclose(mag[above], cap[above]), "every higher-merit session is at its cap"


def _state(i: int, **kw: object) -> SessionState:
    base: dict[str, object] = dict(
        station_id=f"CS{i}", evse_id=1, transaction_id=f"tx{i}", site="s", region="r",
        started_at=T0,
        connected=True, soc_pct=60.0, soc_at=T0, max_discharge_w=10_000.0, min_discharge_w=0.0,
        max_charge_w=11_000.0, min_charge_w=0.0, target_soc_pct=None, departure=None,
        ev_min_v2x_energy_wh=None, ev_target_energy_wh=None, battery_capacity_wh=60_000.0,
        present_power_w=0.0, energy_import_wh=0.0, energy_export_wh=0.0, last_seen=T0,
        ocpp_version="ocpp2.1", requested_energy_transfer="DC_BPT",
    )  # fmt: skip
    base.update(kw)
    return SessionState(**base)  # type: ignore[arg-type]


@st.composite
def fleet_states(draw: st.DrawFn) -> list[SessionState]:
    n = draw(st.integers(1, 20))
    out = []
    for i in range(n):
        soc = draw(st.floats(0, 100))
        cap = draw(st.floats(10_000, 100_000))
        dep = draw(st.one_of(st.none(), st.floats(-600, 36_000)))
        out.append(
            _state(
                i,
                soc_pct=soc,
                battery_capacity_wh=cap,
                min_soc_pct=draw(st.one_of(st.none(), st.floats(0, 60))),
                ev_min_v2x_energy_wh=draw(st.one_of(st.none(), st.floats(-50_000, 10_000))),
                ev_target_energy_wh=draw(st.one_of(st.none(), st.floats(-20_000, 60_000))),
                departure=None if dep is None else T0 + timedelta(seconds=dep),
                max_charge_w=draw(st.floats(0, 22_000)),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(states=fleet_states(), duration_s=st.floats(60, 3600), target_w=st.floats(1, 300_000),
       algorithm=st.sampled_from(["proportional", "merit_order"]))  # fmt: skip
def test_no_session_is_planned_below_its_soc_or_energy_floor(
    states: list[SessionState], duration_s: float, target_w: float, algorithm: Algorithm
) -> None:
    cfg = PlannerConfig()
    end = T0 + timedelta(seconds=duration_s)
    cols = build_columns(
        states, direction=Direction.DISCHARGE, window_start=T0, window_end=end, config=cfg
    )
    plan = plan_dispatch(
        cols, target_w=-target_w, duration_s=duration_s, headroom=0.9, algorithm=algorithm
    )
    for s, w in zip(states, plan.allocation_w, strict=True):
        energy_wh = -w * duration_s / 3600.0
        if energy_wh == 0:
            continue
        assert s.soc_pct is not None
        assert s.battery_capacity_wh is not None
        floor_pct = max(s.min_soc_pct or 0.0, cfg.default_min_soc_pct) + cfg.soc_uncertainty_pct
        assert s.soc_pct - energy_wh / s.battery_capacity_wh * 100 >= floor_pct - 1e-6, "SoC floor"
        if s.ev_min_v2x_energy_wh is not None:
            assert energy_wh <= -s.ev_min_v2x_energy_wh + 1e-6, "V2X energy request"
        assert s.departure is None or s.departure >= end, "departs before the window ends"
        if s.departure is not None and s.ev_target_energy_wh is not None:
            after_h = (s.departure - end).total_seconds() / 3600.0
            recharge_wh = s.max_charge_w * after_h * cfg.recharge_efficiency
            assert s.ev_target_energy_wh + energy_wh <= recharge_wh + 1e-6, "energy for departure"


def test_merit_order_prefers_high_soc_late_departure_vehicles() -> None:
    end = T0 + timedelta(hours=1)
    low_early = _state(1, soc_pct=45.0, departure=end + timedelta(hours=1))
    high_late = _state(2, soc_pct=90.0, departure=end + timedelta(hours=10))
    high_early = _state(3, soc_pct=90.0, departure=end + timedelta(hours=1))
    low_late = _state(4, soc_pct=45.0, departure=end + timedelta(hours=10))
    states = [low_early, high_late, high_early, low_late]
    cols = build_columns(
        states,
        direction=Direction.DISCHARGE,
        window_start=T0,
        window_end=end,
        config=PlannerConfig(),
    )
    plan = plan_dispatch(
        cols, target_w=-15_000, duration_s=3600, headroom=1.0, algorithm="merit_order"
    )
    alloc = dict(zip([s.station_id for s in states], plan.allocation_w, strict=True))
    assert alloc["CS2"] == -10_000.0, "high SoC and late departure goes first, at full power"
    assert alloc["CS1"] == 0.0, "low SoC and early departure goes last"
    assert alloc["CS3"] + alloc["CS4"] == -5_000.0


def test_merit_order_breaks_ties_by_soc_then_by_departure() -> None:
    end = T0 + timedelta(hours=1)
    dep = end + timedelta(hours=4)
    by_soc = [_state(1, soc_pct=50.0, departure=dep), _state(2, soc_pct=80.0, departure=dep)]
    by_departure = [_state(3, soc_pct=70.0, departure=dep), _state(4, soc_pct=70.0, departure=None)]
    for states, winner in ((by_soc, 1), (by_departure, 0)):
        cols = build_columns(
            states,
            direction=Direction.DISCHARGE,
            window_start=T0,
            window_end=end,
            config=PlannerConfig(),
        )
        plan = plan_dispatch(
            cols, target_w=-4_000, duration_s=3600, headroom=1.0, algorithm="merit_order"
        )
        assert plan.allocation_w[winner] == -4_000.0
        assert plan.allocation_w[1 - winner] == 0.0
