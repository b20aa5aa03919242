"""The frequency-service planner: who holds how much (issue 19, core half).

Properties over random fleets: no share past a session's power, no share a session could not
sustain for the product's endurance above its SoC/V2X floor (discharge) or below its ceiling
(charge), the shares sum to the capacity when the fleet can cover it with headroom, and a plan
that cannot says so. Plus cases: only bidirectional 2.1 sessions, busy sessions left out.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.core.dispatch.scripted_fleet import T0
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.ports import SessionState
from vpp_core.services.allocation import ServicePlan, plan_service
from vpp_core.services.products import Product, ServiceRequest

CFG = PlannerConfig()


def state(i: int, **kw: object) -> SessionState:
    base: dict[str, object] = dict(
        station_id=f"CS{i}", evse_id=1, transaction_id=f"tx{i}", site="s", region="r",
        started_at=T0, connected=True, soc_pct=60.0, soc_at=T0, max_discharge_w=10_000.0,
        min_discharge_w=0.0, max_charge_w=11_000.0, min_charge_w=0.0, target_soc_pct=None,
        departure=None, ev_min_v2x_energy_wh=None, ev_target_energy_wh=None,
        battery_capacity_wh=60_000.0, present_power_w=0.0, energy_import_wh=0.0,
        energy_export_wh=0.0, last_seen=T0, ocpp_version="ocpp2.1",
        requested_energy_transfer="DC_BPT",
    )  # fmt: skip
    base.update(kw)
    return SessionState(**base)  # type: ignore[arg-type]


def request(capacity_w: float, **kw: object) -> ServiceRequest:
    args: dict[str, object] = {"capacity_w": capacity_w, "start": T0, "duration_s": 3600.0}
    args.update(kw)
    return ServiceRequest.of(Product.FCR, **args)  # type: ignore[arg-type]


@st.composite
def fleets(draw: st.DrawFn) -> list[SessionState]:
    out = []
    for i in range(draw(st.integers(1, 15))):
        dep = draw(st.one_of(st.none(), st.floats(600, 36_000)))
        out.append(
            state(
                i,
                soc_pct=draw(st.floats(0, 100)),
                battery_capacity_wh=draw(st.floats(5_000, 100_000)),
                min_soc_pct=draw(st.one_of(st.none(), st.floats(0, 60))),
                ev_min_v2x_energy_wh=draw(st.one_of(st.none(), st.floats(-50_000, 10_000))),
                max_discharge_w=draw(st.floats(0, 22_000)),
                max_charge_w=draw(st.floats(0, 22_000)),
                min_discharge_w=draw(st.sampled_from([0.0, 1_000.0])),
                departure=None if dep is None else T0 + timedelta(seconds=dep),
            )
        )
    return out


def discharge_floor_wh(s: SessionState) -> float:
    """What the session may discharge, computed here from its own numbers (not the planner's)."""
    assert s.soc_pct is not None
    assert s.battery_capacity_wh is not None
    floor = max(s.min_soc_pct or 0.0, CFG.default_min_soc_pct)
    room = (s.soc_pct - CFG.soc_uncertainty_pct - floor) / 100 * s.battery_capacity_wh
    if s.ev_min_v2x_energy_wh is not None:
        room = min(room, -s.ev_min_v2x_energy_wh)
    return room


def charge_ceiling_wh(s: SessionState) -> float:
    assert s.soc_pct is not None
    assert s.battery_capacity_wh is not None
    return (CFG.max_charge_soc_pct - s.soc_pct) / 100 * s.battery_capacity_wh


@settings(max_examples=200, deadline=None)
@given(
    fleet=fleets(),
    capacity_w=st.floats(100, 200_000),
    direction=st.sampled_from(["symmetric", "discharge", "charge"]),
    product=st.sampled_from([Product.FCR, Product.FFR, Product.DYNAMIC_CONTAINMENT]),
)
def test_shares_stay_within_power_and_endurance_and_sum_to_capacity_when_feasible(
    fleet: list[SessionState], capacity_w: float, direction: str, product: Product
) -> None:
    r = ServiceRequest.of(
        product,
        capacity_w=capacity_w,
        start=T0,
        duration_s=3600.0,
        direction=direction,  # type: ignore[arg-type]
    )
    plan = plan_service(fleet, r, config=CFG)
    by_key = {s.key: s for s in fleet}
    endurance_h = r.spec.endurance_s / 3600
    for share in plan.shares:
        s = by_key[share.key]
        assert 0 <= share.discharge_w <= s.max_discharge_w + 1e-6
        assert 0 <= share.charge_w <= s.max_charge_w + 1e-6
        if share.discharge_w:
            assert share.discharge_w >= s.min_discharge_w - 1e-6
            assert share.discharge_w * endurance_h <= discharge_floor_wh(s) + 1e-6
        if share.charge_w:
            assert share.charge_w * endurance_h <= charge_ceiling_wh(s) + 1e-6
    no_minimums = all(s.min_discharge_w == 0 and s.min_charge_w == 0 for s in fleet)
    _check_sums(plan, r, no_minimums=no_minimums)


def _check_sums(plan: ServicePlan, r: ServiceRequest, *, no_minimums: bool) -> None:
    total = {
        "discharge": sum(s.discharge_w for s in plan.shares),
        "charge": sum(s.charge_w for s in plan.shares),
    }
    for d in plan.directions:
        assert total[d.direction.value] == pytest.approx(d.committed_w, rel=1e-9, abs=1e-6)
        assert d.committed_w <= r.headroom * d.available_w + 1e-6, "headroom held"
        if no_minimums and r.capacity_w <= r.headroom * d.available_w - 1e-6:
            assert d.committed_w == pytest.approx(r.capacity_w, rel=1e-6)
    assert plan.feasible == (plan.shortfall_reason is None)
    held = {d.direction.value for d in plan.directions}
    assert held == {"symmetric": {"discharge", "charge"}}.get(r.direction, {r.direction})


def test_a_fleet_short_of_capacity_says_by_how_much() -> None:
    fleet = [state(i) for i in range(2)]  # 2 x 10 kW discharge, 2 x 11 kW charge
    plan = plan_service(fleet, request(30_000.0), config=CFG)
    assert not plan.feasible
    d, c = plan.directions
    assert d.available_w == 20_000.0
    assert d.committed_w == pytest.approx(18_000.0)
    assert c.available_w == 22_000.0
    assert c.committed_w == pytest.approx(19_800.0)
    assert plan.shortfall_reason == (
        "discharge: 18000 of 30000 W (headroom 0.90 of 20000 W sustainable for 900 s); "
        "charge: 19800 of 30000 W (headroom 0.90 of 22000 W sustainable for 900 s)"
    )


def test_endurance_caps_a_nearly_empty_battery() -> None:
    # 60 kWh at 25 % SoC, floor 20 % + 3 % uncertainty: 1.2 kWh over 15 min = 4.8 kW sustained
    plan = plan_service(
        [state(0, soc_pct=25.0)], request(100_000.0, direction="discharge"), config=CFG
    )
    (d,) = plan.directions
    assert d.available_w == pytest.approx(4_800.0)
    assert math.isclose(plan.shares[0].discharge_w, 0.9 * 4_800.0)


def test_only_bidirectional_21_sessions_hold_a_service() -> None:
    fleet = [
        state(0),
        state(1, ocpp_version="ocpp2.0.1"),
        state(2, requested_energy_transfer="DC"),
        state(3, priority_charging=True),
    ]
    plan = plan_service(fleet, request(1_000.0), config=CFG)
    assert [s.key.station_id for s in plan.shares] == ["CS0"]
    reasons = {e.key.station_id: e.reason for e in plan.excluded}
    assert reasons["CS1"].startswith("OCPP 2.0.1 station: charge-only")
    assert reasons["CS2"].startswith("requested energy transfer DC is not bidirectional")
    assert reasons["CS3"].startswith("priority charging requested")


def test_a_session_holding_another_service_is_left_out() -> None:
    fleet = [state(0), state(1)]
    busy = {fleet[0].key: "holds frequency service fs-1"}
    plan = plan_service(fleet, request(1_000.0), config=CFG, busy=busy)
    assert [s.key.station_id for s in plan.shares] == ["CS1"]
    assert {e.key.station_id: e.reason for e in plan.excluded} == {
        "CS0": "holds frequency service fs-1"
    }
