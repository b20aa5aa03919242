"""Aggregating charger states: fail-safe chargers offer nothing, silent ones count nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from v2g_gateway.uplink import ChargerState, SummaryHeader, summarize

AT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
HEADER = SummaryHeader(site="site-a", region="north", stream="s", interval_s=10, chargers=3)


def state(cid: str, **overrides: object) -> ChargerState:
    values: dict[str, object] = {
        "charger_id": cid,
        "sessions_connected": 1,
        "v2x_sessions": 1,
        "available_discharge_w": 7000.0,
        "available_charge_w": 11000.0,
        "power_w": -3000.0,
        "soc_pct": (50.0,),
        "energy_import_wh": 100.0,
        "energy_export_wh": 10.0,
        "fail_safe": False,
    }
    values.update(overrides)
    return ChargerState(**values)  # type: ignore[arg-type]


def test_collector_sums_chargers_and_spans_soc() -> None:
    states = [
        state("cp-1", soc_pct=(20.0, 60.0), sessions_connected=2),
        state("cp-2", soc_pct=(90.0,), power_w=5000.0, v2x_sessions=0),
    ]
    s = summarize(HEADER, states, seq=5, at=AT)
    assert (s.seq, s.at, s.stream) == (5, AT, "s")
    assert (s.chargers, s.chargers_reporting) == (3, 2)
    assert (s.sessions_connected, s.v2x_sessions) == (3, 1)
    assert s.available_discharge_w == 14000.0
    assert s.power_w == 2000.0
    assert (s.soc_min_pct, s.soc_max_pct) == (20.0, 90.0)
    assert s.soc_mean_pct == pytest.approx(170 / 3)
    assert (s.energy_import_wh, s.energy_export_wh) == (200.0, 20.0)
    assert not s.fail_safe


def test_fail_safe_charger_offers_no_power_but_its_flow_still_counts() -> None:
    states = [state("cp-1"), state("cp-2", fail_safe=True, trip_code="COMMS_LOSS")]
    s = summarize(HEADER, states, seq=1, at=AT)
    assert s.available_discharge_w == 7000.0
    assert s.available_charge_w == 11000.0
    assert s.power_w == -6000.0
    assert (s.fail_safe, s.fail_safe_chargers) == (True, 1)


def test_no_charger_answered() -> None:
    s = summarize(HEADER, [], seq=1, at=AT)
    assert (s.chargers, s.chargers_reporting, s.available_discharge_w) == (3, 0, 0.0)
    assert s.soc_mean_pct is None


@pytest.mark.parametrize(
    "bad",
    [
        {"available_discharge_w": -1.0},
        {"energy_export_wh": float("nan")},
        {"v2x_sessions": 2},
        {"soc_pct": (101.0,)},
        {"power_w": float("inf")},
    ],
)
def test_impossible_charger_states_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="cp-1"):
        state("cp-1", **bad)
