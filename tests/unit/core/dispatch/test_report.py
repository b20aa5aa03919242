"""Report maths (attribution identity, tracking stats, energy source) and its renderings."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from tests.unit.core.dispatch.scripted_fleet import T0
from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import DispatchRequest, SessionKey
from vpp_core.dispatch.performance import performance_score
from vpp_core.dispatch.render import report_csv, report_json, report_png
from vpp_core.dispatch.report import DispatchReport, build_report

REQ = DispatchRequest(target_w=-100_000.0, start=T0, duration_s=40.0)


def iv(
    k: int,
    *,
    committed: float,
    planned: float,
    dropout: float,
    delivered: float,
    available: float = 200_000.0,
) -> IntervalRecord:
    return IntervalRecord(
        t_start=T0 + timedelta(seconds=10 * k),
        t_end=T0 + timedelta(seconds=10 * (k + 1)),
        target_w=-100_000.0,
        committed_w=committed,
        planned_w=planned,
        dropout_w=dropout,
        delivered_w=delivered,
        available_w=available,
        deployable_w=0.9 * available,
    )


# Each interval isolates one cause (W, discharge negative; 10 s each = 1/360 h).
INTERVALS = (
    iv(0, committed=-100_000, planned=-100_000, dropout=0, delivered=-90_000),  # lag 10 kW
    iv(
        1, committed=-100_000, planned=-100_000, dropout=-20_000, delivered=-80_000
    ),  # drop-out 20 kW
    iv(
        2, committed=-90_000, planned=-90_000, dropout=0, delivered=-90_000, available=100_000
    ),  # headroom
    iv(
        3, committed=-110_000, planned=-105_000, dropout=0, delivered=-105_000
    ),  # compensation + command
)


def report(
    intervals: tuple[IntervalRecord, ...] = INTERVALS,
    *,
    sessions: tuple[SessionRecord, ...] = (),
    ramp_in_s: float = 0,
    dispatch_id: str = "d",
) -> DispatchReport:
    """A completed dispatch's report: committed 100 kW discharge of 200 kW available."""
    return build_report(
        dispatch_id,
        REQ,
        status="completed",
        intervals=intervals,
        sessions=sessions,
        committed_w=-100_000,
        initial_available_w=200_000,
        excluded=(),
        ramp_in_s=ramp_in_s,
    )


def test_attribution_assigns_each_cause_and_sums_to_the_total() -> None:
    rep = report()
    a = rep.attribution
    h = 10 / 3600
    assert a.lag_wh == pytest.approx(10_000 * h)
    assert a.dropout_wh == pytest.approx(20_000 * h)
    assert a.headroom_wh == pytest.approx(10_000 * h)
    assert a.capacity_wh == 0
    assert a.compensation_wh == pytest.approx(-10_000 * h)
    assert a.command_wh == pytest.approx(5_000 * h)
    parts = (
        a.lag_wh + a.dropout_wh + a.headroom_wh + a.capacity_wh + a.compensation_wh + a.command_wh
    )
    assert a.total_wh == pytest.approx(parts)
    assert a.total_wh == pytest.approx((10_000 + 20_000 + 10_000 - 5_000) * h)


def test_capacity_lost_after_the_first_plan_counts_as_drop_out() -> None:
    short = (
        iv(0, committed=-60_000, planned=-60_000, dropout=0, delivered=-60_000, available=60_000),
    )
    rep = report(short)
    assert rep.attribution.dropout_wh == pytest.approx(40_000 * 10 / 3600)
    assert rep.attribution.capacity_wh == 0


def test_headline_figures_each_over_their_own_samples() -> None:
    rep = report(ramp_in_s=10)
    t = rep.tracking
    assert t.samples == 4
    assert t.max_abs_error_w == pytest.approx(20_000)
    assert t.rmse_w == pytest.approx(((10e3**2 + 20e3**2 + 10e3**2 + 5e3**2) / 4) ** 0.5)
    assert t.within_5pct_share == pytest.approx(1 / 4)  # whole window: only -105 kW
    assert (t.samples_after_ramp_in, t.ramp_in_s) == (3, 10)
    assert t.within_5pct_after_ramp_in_share == pytest.approx(1 / 3)
    assert t.mean_error_w == pytest.approx((10_000 + 20_000 + 10_000 - 5_000) / 4)
    assert t.time_to_90pct_s == 10  # the first interval ends at 90 kW of 100 kW
    assert t.max_overshoot_pct == pytest.approx(5.0)  # -105 kW delivered
    assert t.max_commanded_overshoot_pct == pytest.approx(5.0)  # -105 kW of setpoints
    assert (rep.tracking_mode, rep.overshoot_allowed_pct) == ("power", 0.0)


def test_a_short_run_states_that_no_sample_followed_the_ramp_in() -> None:
    slow = tuple(
        iv(k, committed=-100_000, planned=-100_000, dropout=0, delivered=-50_000) for k in range(2)
    )
    t = report(slow, ramp_in_s=30).tracking
    assert (t.samples, t.within_5pct_share) == (2, 0.0)
    assert (t.samples_after_ramp_in, t.within_5pct_after_ramp_in_share) == (0, 0.0)
    assert t.time_to_90pct_s is None
    assert (t.max_overshoot_pct, t.max_commanded_overshoot_pct) == (0.0, 0.0)


def test_the_performance_score_is_of_delivered_against_target() -> None:
    rep = report()
    assert rep.performance == performance_score(
        [100_000.0] * 4, [90_000.0, 80_000.0, 90_000.0, 105_000.0], sample_s=10.0, step_s=10.0
    )
    assert report(INTERVALS[:2]).performance is None  # too few samples to correlate


def _session(i: int, exported_wh: float) -> SessionRecord:
    r = SessionRecord(SessionKey(f"CS{i}", 1, f"tx{i}"), profile_sent=True, end_status="Accepted")
    r.import_wh_start, r.export_wh_start, r.import_wh, r.export_wh = (
        5.0,
        100.0,
        5.0,
        100.0 + exported_wh,
    )
    return r


def test_energy_comes_from_meter_registers_and_error_is_signed_by_direction() -> None:
    sessions = (_session(1, 500.0), _session(2, 420.0))
    rep = report(sessions=sessions)
    assert rep.energy_source == "meter registers"
    assert rep.delivered_energy_wh == pytest.approx(-920.0)
    assert rep.target_energy_wh == pytest.approx(-100_000 * 40 / 3600)
    assert rep.energy_error_pct == pytest.approx((920.0 - 1111.111) / 1111.111 * 100, rel=1e-4)
    assert rep.uncleared == ()
    assert [s.metered_energy_wh for s in rep.sessions] == [-500.0, -420.0]


def test_attribution_uses_the_meter_energy_of_the_headline() -> None:
    """The meters saw 920 Wh out where the sampled power says 944 Wh: the parts still sum to
    the headline's deviation, the difference being the vehicles' (lag)."""
    rep = report(sessions=(_session(1, 500.0), _session(2, 420.0)))
    a, h = rep.attribution, 10 / 3600
    assert rep.sampled_energy_wh == pytest.approx(-(90 + 80 + 90 + 105) * 1000 * h)
    assert a.total_wh == pytest.approx(-(rep.target_energy_wh - rep.delivered_energy_wh))
    parts = (
        a.lag_wh + a.dropout_wh + a.headroom_wh + a.capacity_wh + a.compensation_wh + a.command_wh
    )
    assert a.total_wh == pytest.approx(parts)
    assert a.lag_wh == pytest.approx(10_000 * h + (rep.delivered_energy_wh - rep.sampled_energy_wh))


def test_sessions_that_ended_before_the_clear_are_not_uncleared() -> None:
    gone = _session(1, 200.0)
    gone.end_status, gone.ended_at = "Rejected", T0 + timedelta(seconds=15)
    stuck = _session(2, 300.0)
    stuck.end_status = "Rejected"
    rep = report(sessions=(gone, stuck))
    assert rep.ended_before_clear == (gone.key,)
    assert rep.uncleared == (stuck.key,)
    assert [s.ended_at for s in rep.sessions] == [gone.ended_at, None]


def test_without_registers_the_sampled_energy_is_used() -> None:
    silent = SessionRecord(SessionKey("CS1", 1, "tx1"), profile_sent=True, end_status="Unknown")
    rep = report(sessions=(silent,))
    assert rep.energy_source == "sampled power"
    assert rep.delivered_energy_wh == pytest.approx(rep.sampled_energy_wh)


def test_renderings() -> None:
    failed = SessionRecord(
        SessionKey("CS9", 1, "tx9"), profile_sent=True, end_status="error: TimeoutError()"
    )
    rep = report(sessions=(failed,), dispatch_id="d7")
    data = json.loads(report_json(rep))
    assert data["schema"] == "vpp.dispatch.report/2"
    assert data["tracking_mode"] == "power"
    assert data["tracking"]["samples_after_ramp_in"] == 4
    assert data["direction"] == "discharge"
    assert data["intervals"][0]["t_start"] == "2026-01-15T12:00:00Z"
    assert data["uncleared"] == [{"station_id": "CS9", "evse_id": 1, "transaction_id": "tx9"}]
    rows = list(csv.reader(io.StringIO(report_csv(rep).decode())))
    assert rows[0][:4] == ["t_start", "t_end", "target_w", "committed_w"]
    assert rows[1][2] == "-100000.000"
    assert len(rows) == 5
    assert report_png(rep).startswith(b"\x89PNG\r\n\x1a\n")
    assert report_png(rep, speed=30) != report_png(rep)  # says the time was compressed


def test_an_empty_report_renders() -> None:
    rep = build_report(
        "d0",
        REQ,
        status="cancelled",
        intervals=(),
        sessions=(),
        committed_w=0.0,
        initial_available_w=0.0,
        excluded=(),
        ramp_in_s=0,
    )
    assert json.loads(report_json(rep))["intervals"] == []
    assert report_csv(rep).decode().count("\n") == 1
    assert report_png(rep).startswith(b"\x89PNG")


def test_backing_off_after_over_delivery_is_compensation_not_headroom() -> None:
    ahead = (iv(0, committed=-95_000, planned=-95_000, dropout=0, delivered=-95_000),)
    rep = report(ahead)
    assert rep.attribution.headroom_wh == 0
    assert rep.attribution.compensation_wh == pytest.approx(5_000 * 10 / 3600)
