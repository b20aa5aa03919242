"""The demo scenario's time compression: powers real, durations and capacities / S, so a
vehicle's SoC moves as uncompressed; leavers discharge and leave mid-window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from v2g_sim.scenario import build_scenario

IDS = [f"CS-{i:04d}" for i in range(1, 51)]


@given(speed=st.floats(min_value=1.0, max_value=60.0))
def test_compression_keeps_powers_and_soc_rates(speed: float) -> None:
    plain = build_scenario(IDS, speed=1.0, seed=7)
    fast = build_scenario(IDS, speed=speed, seed=7)
    assert fast.window_s == pytest.approx(plain.window_s / speed)
    for a, b in zip(plain.evs, fast.evs, strict=True):
        assert b.spec.max_discharge_w == a.spec.max_discharge_w  # powers are real
        assert b.spec.soc_pct == a.spec.soc_pct
        assert b.spec.battery_capacity_wh == pytest.approx(a.spec.battery_capacity_wh / speed)
        assert b.spec.departure_in_s == pytest.approx(a.spec.departure_in_s / speed)  # type: ignore[operator]
        # %/s at full discharge, scaled by the real-time factor, is the same SoC trajectory
        rate_a = a.spec.max_discharge_w / a.spec.battery_capacity_wh
        rate_b = b.spec.max_discharge_w / b.spec.battery_capacity_wh
        assert rate_b == pytest.approx(rate_a * speed)
    assert fast.target_energy_wh == pytest.approx(plain.target_energy_wh / speed)
    assert fast.uncompressed_wh(fast.target_energy_wh) == pytest.approx(plain.target_energy_wh)


def test_defaults_match_the_issue() -> None:
    s = build_scenario(IDS)
    assert s.power_mw == pytest.approx(0.2)  # 4 kW per station, 50 stations
    assert s.window_scenario_s == 900.0
    assert s.window_s == 90.0  # speed 10
    assert len(s.unplugs) == 5  # 10 %
    leavers = {u.station_id for u in s.unplugs}
    assert all(ev.spec.bidirectional for ev in s.evs if ev.station_id in leavers)
    assert all(0.25 * s.window_s <= u.at_s <= 0.75 * s.window_s for u in s.unplugs)
    assert [u.at_s for u in s.unplugs] == sorted(u.at_s for u in s.unplugs)
    assert len({ev.spec.soc_pct for ev in s.evs}) > 20  # varied
    assert any(not ev.spec.bidirectional for ev in s.evs)


def test_rejects_a_non_positive_speed() -> None:
    with pytest.raises(ValueError, match="speed"):
        build_scenario(IDS, speed=0.0)
