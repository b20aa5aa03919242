"""A frequency service's report (issue 19): capacity per settlement interval, what the fleet
could deliver from its live state, and per activation the fleet's response against the curve
from the gateways' activation series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.core.services.test_allocation import CFG, state
from v2g_common.telemetry.activation import keep_point
from vpp_core.dispatch.model import Direction, SessionKey
from vpp_core.services.activations import StationActivation, activation_of
from vpp_core.services.allocation import SessionShare, deliverable_w
from vpp_core.services.products import Product, ServiceRequest
from vpp_core.services.report import CapacityLedger, ShareLog, fleet_activations

T0 = datetime(2026, 12, 3, 14, 7, tzinfo=UTC)
SHARE_W = 5_000.0
TAU_S = 2.0  # the stations' first-order response


def fcr(capacity_w: float = 100_000.0, **kw: object) -> ServiceRequest:
    args: dict[str, object] = {"capacity_w": capacity_w, "start": T0, "duration_s": 1800.0}
    args.update(kw)
    return ServiceRequest.of(Product.FCR, **args)  # type: ignore[arg-type]


def share(i: int) -> SessionShare:
    return SessionShare(SessionKey(f"CS{i}", 1, f"tx{i}"), SHARE_W, SHARE_W)


def series(respond: float, *, until_s: float = 120.0, freq_hz: float = 49.8,
           before_w: float = 300.0) -> tuple[tuple[float, float, float], ...]:  # fmt: skip
    """The gateway's thinned series of a step to ``freq_hz``: power moves ``respond`` x the
    full -5 kW with a first-order lag."""
    out: list[tuple[float, float, float]] = []
    for k in range(int(until_s * 10) + 1):
        t = k / 10
        if keep_point(out[-1][0] if out else None, t):
            p = before_w - respond * SHARE_W * (1 - math.exp(-t / TAU_S))
            out.append((t, freq_hz, p))
    return tuple(out)


def activation(i: int, respond: float = 1.0, *, shift_s: float = 0.0) -> StationActivation:
    return StationActivation(
        station_id=f"CS{i}", started_at=T0 + timedelta(seconds=60 + shift_s), nominal_hz=50.0,
        baseline_w=300.0, series=series(respond), truncated=False,
    )  # fmt: skip


def log_of(n: int) -> ShareLog:
    log = ShareLog()
    log.record(T0 - timedelta(seconds=10), [share(i) for i in range(n)])
    return log


def test_a_fleet_following_the_curve_is_timed_and_its_energy_counted() -> None:
    (a,) = fleet_activations([activation(i) for i in range(20)], log_of(20), fcr())
    f = a.fleet
    assert (a.direction, a.delta_f_hz) == ("discharge", -0.2)
    assert f.reference_w == pytest.approx(-100_000.0)  # 20 x 5 kW at full activation
    # first-order lag, tau 2 s: 1 % at 0.02 s, 50 % at 1.39 s, 95 % at 5.99 s, 99 % at 9.21 s,
    # each at the next point of the series (0.1 s to 5 s, then 1 s)
    assert (f.delay_s, f.t50_s, f.t95_s, f.t100_s) == (0.1, 1.4, 6.0, 10.0)
    assert f.expected_wh == pytest.approx(-100_000.0 * 120 / 3600)
    lag_wh = 100_000.0 * TAU_S * (1 - math.exp(-120 / TAU_S)) / 3600  # what the lag costs
    assert f.delivered_wh == pytest.approx(f.expected_wh + lag_wh, rel=2e-3)
    assert all(r.met for r in a.requirements)  # 50 % by 15 s, 100 % by 30 s
    assert [r.figure for r in a.requirements] == ["t50_s", "t100_s"]
    assert a.reported == tuple(sorted(f"CS{i}" for i in range(20)))
    assert a.missing == a.without_share == ()


def test_a_station_that_does_not_respond_fails_the_fleet_and_is_named() -> None:
    acts = [activation(i) for i in range(19)] + [activation(19, respond=0.0)]
    log = log_of(21)  # CS20 holds a share and reported nothing
    acts.append(activation(99))  # reported, holds no share: left out of the sums
    (a,) = fleet_activations(acts, log, fcr())
    assert a.stations["CS19"].delay_s is None
    assert a.fleet.t95_s is None  # 19 of 21 shares: never 95 %
    assert {r.figure: r.met for r in a.requirements} == {"t50_s": True, "t100_s": False}
    assert (a.missing, a.without_share) == (("CS20",), ("CS99",))
    assert a.fleet.reference_w == pytest.approx(-105_000.0)


def test_stations_starting_apart_are_separate_activations_and_shifts_are_kept() -> None:
    acts = [activation(0), activation(1, shift_s=0.5), activation(2, shift_s=30.0)]
    first, second = fleet_activations(acts, log_of(3), fcr())
    assert (first.reported, second.reported) == (("CS0", "CS1"), ("CS2",))
    assert first.stations["CS1"].delay_s == pytest.approx(0.6)  # from the fleet's start
    assert first.stations["CS0"].delay_s == pytest.approx(0.1)


def test_an_activation_detail_is_read_or_refused_naming_the_key() -> None:
    detail: dict[str, object] = {
        "started_at": "2026-12-03T14:08:00+00:00", "nominal_hz": 50.0,
        "baseline_power_w": 12.5, "series": "0.00,49.8000,0;0.10,49.8000,-500",
    }  # fmt: skip
    a = activation_of("CS1", detail)
    assert (a.baseline_w, a.last_s, a.truncated) == (12.5, 0.1, False)
    with pytest.raises(ValueError, match="started_at and series"):
        activation_of("CS1", {k: v for k, v in detail.items() if k != "series"})
    with pytest.raises(ValueError, match="nominal_hz"):
        activation_of("CS1", {**detail, "nominal_hz": "x"})
    with pytest.raises(ValueError, match="no UTC offset"):
        activation_of("CS1", {**detail, "started_at": "2026-12-03T14:08:00"})


def test_capacity_intervals_are_the_settlement_periods_clipped_to_the_window() -> None:
    ledger = CapacityLedger(fcr(duration_s=1800.0))  # 14:07 to 14:37, FCR: 15 min periods
    full = {"discharge": 100_000.0, "charge": 100_000.0}
    short = {"discharge": 90_000.0, "charge": 100_000.0}
    for minute in range(0, 30):
        at = T0 + timedelta(minutes=minute)
        deliverable = short if minute == 10 else full
        ledger.sample(at, planned=full, held=full, deliverable=deliverable)
    ledger.sample(T0 + timedelta(minutes=31), planned=full, held=full, deliverable=full)
    bounds = [(i.start.strftime("%H:%M"), i.end.strftime("%H:%M")) for i in ledger.intervals]
    assert bounds == [("14:07", "14:15"), ("14:15", "14:30"), ("14:30", "14:37")]
    assert [i.samples for i in ledger.intervals] == [8, 15, 7]
    middle = ledger.intervals[1]  # 14:17 was short of discharge capacity
    assert (middle.covered("discharge"), middle.covered("charge")) == (False, True)
    assert middle.deliverable_min_w["discharge"] == 90_000.0
    assert middle.deliverable_mean_w("discharge") == pytest.approx(100_000.0 - 10_000.0 / 15)
    assert ledger.intervals[0].covered("discharge")


def test_deliverable_is_each_share_limited_by_its_live_state() -> None:
    shares = [share(0), share(1), share(2)]
    sessions = [
        state(0),
        state(1, soc_pct=25.0),  # 60 kWh at 25 %, floor 23 %: 4.8 kW for 15 min
        state(2, connected=False),
    ]
    got = deliverable_w(sessions, fcr(), shares, config=CFG, at=T0)
    assert got[Direction.DISCHARGE] == pytest.approx(SHARE_W + 4_800.0)
    assert got[Direction.CHARGE] == pytest.approx(2 * SHARE_W)
