"""Planner cases as data: inputs and the exact expected allocation (W, signed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pytest

from tests.unit.core.dispatch.scripted_fleet import T0
from tests.unit.core.dispatch.test_planner_properties import _state
from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.model import Direction, SessionKey
from vpp_core.dispatch.planner import SessionColumns, plan_dispatch


@dataclass
class Case:
    name: str
    max_w: list[float]
    target_w: float
    expected_w: list[float]
    min_w: list[float] | None = None
    usable_wh: list[float] | None = None
    stations: list[int] | None = None
    station_limit_w: list[float] = field(default_factory=list)
    headroom: float = 1.0
    algorithm: str = "proportional"
    merit: list[float] | None = None
    shortfall_w: float = 0.0


CASES = [
    Case(
        "proportional to available power", [10_000, 5_000, 5_000], -10_000, [-5_000, -2_500, -2_500]
    ),
    Case(
        "headroom keeps 10 % back",
        [10_000, 10_000],
        -30_000,
        [-9_000, -9_000],
        headroom=0.9,
        shortfall_w=12_000,
    ),
    Case(
        "energy floor caps power over the window (1 h)",
        [10_000, 10_000],
        -12_000,
        [-10_000, -2_000],
        usable_wh=[50_000, 2_000],
    ),
    Case(
        "minimum power: raised to it, others share the rest",
        [10_000, 2_000],
        -3_000,
        [-1_600, -1_400],
        min_w=[0, 1_400],
    ),
    Case(
        "too small for both minimums: the smaller sits out",
        [10_000, 2_000],
        -1_500,
        [-1_500, 0],
        min_w=[1_400, 1_400],
    ),
    Case(
        "station limit shared by its EVSEs",
        [10_000, 10_000, 10_000],
        -15_000,
        [-15e3 * 3.75 / 17.5, -15e3 * 3.75 / 17.5, -15e3 * 10 / 17.5],
        stations=[0, 0, 1],
        station_limit_w=[7_500, 1e9],
    ),
    Case(
        "merit order fills best first",
        [10_000, 10_000, 10_000],
        -15_000,
        [0, -10_000, -5_000],
        algorithm="merit_order",
        merit=[0.1, 0.9, 0.5],
    ),
    Case(
        "merit order: marginal below its minimum borrows from the one before",
        [10_000, 5_000],
        -10_500,
        [-9_000, -1_500],
        min_w=[1_000, 1_500],
        algorithm="merit_order",
        merit=[1, 0],
    ),
    Case("charging direction", [11_000, 7_000], 9_000, [5_500, 3_500]),
]


def _columns(c: Case) -> SessionColumns:
    n = len(c.max_w)
    stations = np.array(c.stations or list(range(n)), dtype=np.intp)
    limits = c.station_limit_w or [np.inf] * (int(stations.max()) + 1)
    return SessionColumns(
        direction=Direction.DISCHARGE if c.target_w < 0 else Direction.CHARGE,
        keys=tuple(SessionKey(f"CS{s}", i, f"tx{i}") for i, s in enumerate(stations)),
        max_w=np.array(c.max_w, dtype=float),
        min_w=np.array(c.min_w or [0.0] * n, dtype=float),
        usable_wh=np.array(c.usable_wh or [np.inf] * n, dtype=float),
        merit=np.array(c.merit or [0.0] * n, dtype=float),
        station_idx=stations,
        station_limit_w=np.array(limits, dtype=float),
        site_idx=np.zeros(n, dtype=np.intp),
        site_limit_w=np.array([np.inf]),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_case(case: Case) -> None:
    plan = plan_dispatch(
        _columns(case),
        target_w=case.target_w,
        duration_s=3600,
        headroom=case.headroom,
        algorithm=case.algorithm,  # type: ignore[arg-type]
    )
    assert plan.allocation_w.tolist() == pytest.approx(case.expected_w), case.name
    assert plan.shortfall_w == pytest.approx(case.shortfall_w)
    if case.shortfall_w:
        assert "headroom 0.90" in (plan.shortfall_reason or "")


def test_excluded_sessions_are_listed_with_their_reason() -> None:
    end = T0 + timedelta(hours=1)
    states = [
        _state(0),
        _state(1, connected=False),
        _state(2, departure=T0 + timedelta(minutes=30)),
        _state(3, max_discharge_w=0.0),
        _state(4, soc_pct=None, battery_capacity_wh=None),
        _state(5, soc_pct=22.0),
        _state(6, min_discharge_w=5_000.0, ev_min_v2x_energy_wh=-1_000.0),
        _state(7),
    ]
    cols = build_columns(
        states,
        direction=Direction.DISCHARGE,
        window_start=T0,
        window_end=end,
        config=PlannerConfig(),
        blocked={SessionKey("CS7", 1, "tx7"): "profile conflict: test"},
    )
    reasons = {e.key.station_id: e.reason for e in cols.excluded}
    assert reasons == {
        "CS1": "not connected (station offline or EV unplugged)",
        "CS2": "departs before the window ends",
        "CS3": "no discharge capability reported",
        "CS4": "no SoC or V2X energy data: cannot protect its floor",
        "CS5": "at its SoC/energy floor",
        "CS6": "energy budget below its minimum power over the window",
        "CS7": "profile conflict: test",
    }
    plan = plan_dispatch(
        cols, target_w=-20_000, duration_s=3600, headroom=0.9, algorithm="proportional"
    )
    assert [k.station_id for k, _ in plan.allocations()] == ["CS0"]
    assert plan.excluded == cols.excluded


def test_energy_already_moved_reduces_the_v2x_budget() -> None:
    end = T0 + timedelta(hours=1)
    s = _state(0, soc_pct=None, ev_min_v2x_energy_wh=-5_000.0)
    key = SessionKey("CS0", 1, "tx0")
    cols = build_columns(
        [s],
        direction=Direction.DISCHARGE,
        window_start=T0,
        window_end=end,
        config=PlannerConfig(),
        moved_wh={key: 2_000.0},
    )
    assert cols.usable_wh.tolist() == [3_000.0]


def test_station_and_site_limits_hold_through_build_columns() -> None:
    """A limited station's EVSEs share its limit; unlimited stations (all in one no-limit
    group) and a limited site each keep to theirs."""
    states = [
        _state(0, station_id="CSA", evse_id=1),
        _state(1, station_id="CSA", evse_id=2),
        _state(2, station_id="CSB"),
        _state(3, station_id="CSC", site="small-site"),
        _state(4, station_id="CSD"),
    ]
    cols = build_columns(
        states,
        direction=Direction.DISCHARGE,
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        config=PlannerConfig(),
        station_limit_w={"CSA": 8_000.0, "CS-not-here": 1.0},
        site_limit_w={"small-site": 5_000.0},
    )
    plan = plan_dispatch(
        cols, target_w=-40_000, duration_s=3600, headroom=1.0, algorithm="proportional"
    )
    got = {(k.station_id, k.evse_id): round(w) for k, w in plan.allocations()}
    assert got == {
        ("CSA", 1): -4_000,
        ("CSA", 2): -4_000,
        ("CSB", 1): -10_000,
        ("CSC", 1): -5_000,
        ("CSD", 1): -10_000,
    }
    assert plan.shortfall_w == pytest.approx(7_000.0)


def test_wrong_sign_target_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong sign"):
        plan_dispatch(
            _columns(CASES[0]), target_w=5_000, duration_s=60, headroom=1, algorithm="proportional"
        )
