"""Control-law cases as data: an injected timeline, the expected command, contactor, events."""

from __future__ import annotations

import pytest

from tests.unit.gateway.control.control_harness import EV, Timeline, measurement
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.law import EvLimits

PERIOD = 0.1


def closed_and_at(tl: Timeline, power_w: float, *, valid_for_s: float = 600.0) -> None:
    """Contact, lease, contactor closed, commanded ramped all the way to ``power_w``."""
    tl.contact()
    tl.grant(power_w, valid_for_s)
    for _ in range(400):
        tl.contact()
        out = tl.advance(PERIOD)
        if out.setpoint_w == power_w and out.contactor_closed:
            return
    raise AssertionError(f"never reached {power_w} W: {tl.state}")


def test_contactor_closes_before_any_power_flows() -> None:
    tl = Timeline()
    tl.grant(-5000.0, 60.0)
    first = tl.advance(PERIOD)
    assert first.contactor_closed
    assert first.setpoint_w == 0.0
    second = tl.advance(PERIOD)
    assert second.setpoint_w == pytest.approx(-200.0)  # 2000 W/s x 0.1 s


def test_ramp_applies_to_the_drop_to_zero_at_lease_expiry() -> None:
    tl = Timeline()
    closed_and_at(tl, -4000.0, valid_for_s=30.0)
    tl.lease = type(tl.lease)(-4000.0, tl.now + 0.05, tl.now)  # type: ignore[misc]
    outs = tl.run_for(2.5)
    powers = [o.setpoint_w for o in outs]
    assert powers[:3] == pytest.approx([-3800.0, -3600.0, -3400.0])
    assert powers[-1] == 0.0
    assert EventCode.LEASE_EXPIRED in tl.events()


@pytest.mark.parametrize(
    ("lease_w", "ev", "site_export_w", "expected_w"),
    [
        (-9000.0, EvLimits(11000.0, 3000.0), 11000.0, -3000.0),  # EV's V2X limit
        (-9000.0, EV, 2500.0, -2500.0),  # site export limit
        (9000.0, EvLimits(4000.0, 11000.0), 11000.0, 4000.0),  # EV's charge limit
        (-20000.0, EV, 50000.0, -11000.0),  # module rating (EV also 11 kW)
    ],
)
def test_lease_is_clamped_to_every_limit(
    lease_w: float, ev: EvLimits, site_export_w: float, expected_w: float
) -> None:
    tl = Timeline(cfg=ControlSection(site_max_export_w=site_export_w), ev=ev)
    closed_and_at(tl, expected_w)
    tl.run_for(3.0)
    tl.grant(lease_w, 600.0)
    tl.contact()
    tl.run_for(10.0)
    assert tl.state.commanded_w == expected_w


def test_default_ev_limits_allow_no_discharge() -> None:
    tl = Timeline(ev=EvLimits())
    tl.grant(-5000.0, 60.0)
    outs = tl.run_for(5.0)
    assert all(o.setpoint_w == 0.0 for o in outs)


def test_a_lowered_limit_applies_at_once() -> None:
    tl = Timeline()
    closed_and_at(tl, -8000.0)
    tl.ev = EvLimits(max_charge_w=11000.0, max_discharge_w=2000.0)
    assert tl.advance(PERIOD).setpoint_w == -2000.0


def test_soc_band_ramps_discharge_down_and_the_floor_with_margin_is_hard() -> None:
    cfg = ControlSection(soc_min_pct=20.0, soc_margin_pct=2.0, soc_ramp_band_pct=1.0)
    tl = Timeline(cfg=cfg)
    closed_and_at(tl, -1000.0)
    tl.soc_pct = 22.5  # inside the ramp band above the 22 % floor: ramp down
    assert tl.advance(PERIOD).setpoint_w == pytest.approx(-800.0)
    tl.soc_pct = 22.0  # at the floor (minimum + margin): nothing, at once
    assert tl.advance(PERIOD).setpoint_w == 0.0
    assert EventCode.SOC_FLOOR_REACHED in tl.events()
    tl.soc_pct = 22.9
    tl.grant(-1000.0, 60.0)
    assert all(o.setpoint_w == 0.0 for o in tl.run_for(2.0))
    tl.soc_pct = 23.5  # above the band: discharge allowed again
    assert tl.run_for(2.0)[-1].setpoint_w == -1000.0


def test_no_charge_at_the_soc_ceiling_and_no_discharge_without_soc() -> None:
    tl = Timeline(cfg=ControlSection(soc_max_pct=90.0, soc_ramp_band_pct=2.0))
    tl.soc_pct = 90.0
    tl.grant(5000.0, 60.0)
    assert all(o.setpoint_w == 0.0 for o in tl.run_for(2.0))
    tl.soc_pct = None
    tl.grant(-5000.0, 60.0)
    assert all(o.setpoint_w == 0.0 for o in tl.run_for(2.0))
    tl.grant(3000.0, 60.0)
    assert tl.run_for(3.0)[-1].setpoint_w == 3000.0  # charging needs no SoC


@pytest.mark.parametrize(
    ("faults", "freq_hz", "code"),
    [
        (frozenset({"GROUND_FAULT"}), 50.0, EventCode.GROUND_FAULT),
        (frozenset({"OVER_TEMP", "AC_OVER_VOLTAGE"}), 50.0, EventCode.OVER_TEMP),
        (frozenset({"SOMETHING_NEW"}), 50.0, EventCode.MODULE_FAULT),
        (frozenset(), 46.9, EventCode.GRID_FREQ_OUT_OF_RANGE),
        (frozenset(), 63.1, EventCode.GRID_FREQ_OUT_OF_RANGE),
    ],
)
def test_module_faults_and_grid_frequency_trip_at_once(
    faults: frozenset[str], freq_hz: float, code: EventCode
) -> None:
    tl = Timeline()
    closed_and_at(tl, -6000.0)
    m = measurement(power_w=-6000.0, grid_freq_hz=freq_hz, faults=faults)
    out = tl.advance(PERIOD, m=m)
    assert (out.setpoint_w, out.contactor_closed, out.events) == (0.0, False, (code,))
    assert tl.state.trip == code


def test_grid_window_edges_do_not_trip() -> None:
    tl = Timeline()
    closed_and_at(tl, -1000.0)
    for hz in (47.0, 63.0):
        out = tl.advance(PERIOD, m=measurement(power_w=-1000.0, grid_freq_hz=hz))
        assert out.contactor_closed
        assert tl.state.trip is None


def test_sensor_mismatch_trips_after_n_cycles_not_before() -> None:
    cfg = ControlSection(sensor_mismatch_cycles=5, sensor_tolerance_w=300.0)
    tl = Timeline(cfg=cfg)
    closed_and_at(tl, -6000.0)
    m = measurement(power_w=-6000.0)
    for _ in range(4):
        assert tl.advance(PERIOD, m=m, sensor_w=-5000.0).contactor_closed
    out = tl.advance(PERIOD, m=m, sensor_w=-5000.0)
    assert out.events == (EventCode.SENSOR_MISMATCH,)
    assert (out.setpoint_w, out.contactor_closed) == (0.0, False)


def test_sensor_within_percentage_tolerance_does_not_trip() -> None:
    tl = Timeline(cfg=ControlSection(sensor_tolerance_w=100.0, sensor_tolerance_pct=5.0))
    closed_and_at(tl, -10000.0)
    m = measurement(power_w=-10000.0)
    tl.run_for(3.0, m=m, sensor_w=-9600.0)  # 400 W apart, 5 % of 10 kW is 500 W
    assert tl.state.trip is None


def test_unreadable_module_ramps_down_then_trips() -> None:
    tl = Timeline(cfg=ControlSection(module_comm_loss_cycles=3))
    closed_and_at(tl, -2000.0)
    outs = [tl.advance(PERIOD, m=None, sensor_w=-2000.0) for _ in range(3)]
    assert [o.setpoint_w for o in outs] == pytest.approx([-1800.0, -1600.0, 0.0])
    assert outs[-1].events == (EventCode.MODULE_COMM_LOST,)


def test_trip_rearms_only_after_cause_gone_for_delay_and_a_new_lease() -> None:
    tl = Timeline(cfg=ControlSection(rearm_delay_s=5.0))
    closed_and_at(tl, -3000.0)
    tl.advance(PERIOD, m=measurement(faults=frozenset({"GROUND_FAULT"})))
    tl.run_for(6.0)  # fault gone, old lease still valid: stays open
    assert not tl.state.contactor_closed
    assert tl.state.trip is not None
    tl.grant(-3000.0, 60.0)
    out = tl.advance(PERIOD)
    assert EventCode.TRIP_CLEARED in out.events
    assert tl.run_for(3.0)[-1].setpoint_w == -3000.0


def test_stopping_ramps_to_zero_then_opens() -> None:
    tl = Timeline()
    closed_and_at(tl, -1000.0)
    tl.stopping = True
    outs = tl.run_for(1.0)
    powers = [o.setpoint_w for o in outs]
    assert powers[:5] == pytest.approx([-800.0, -600.0, -400.0, -200.0, 0.0])
    assert outs[3].contactor_closed
    assert not outs[4].contactor_closed


def test_an_ev_hold_ramps_to_zero_opens_and_keeps_it_open_until_released() -> None:
    """ISO 15118: the EV's session outside its charge loop (or EV_COMM_TIMEOUT) holds the
    output; the loop keeps running, the lease stays, and nothing closes until release."""
    tl = Timeline()
    closed_and_at(tl, -1000.0)
    tl.ev_hold = True
    outs = tl.run_for(2.0)
    powers = [o.setpoint_w for o in outs]
    assert powers[:5] == pytest.approx([-800.0, -600.0, -400.0, -200.0, 0.0])
    assert outs[3].contactor_closed
    assert not any(o.contactor_closed for o in outs[4:])
    tl.ev_hold = False
    outs = tl.run_for(3.0)
    assert outs[0].contactor_closed
    assert outs[-1].setpoint_w == -1000.0


def test_unplug_means_zero_at_once_and_open() -> None:
    tl = Timeline()
    closed_and_at(tl, -4000.0)
    out = tl.advance(PERIOD, m=measurement(ev_connected=False))
    assert (out.setpoint_w, out.contactor_closed) == (0.0, False)
    assert EventCode.EV_DISCONNECTED in out.events


# --- comms-loss fail-safe with an injected clock --------------------------------------------


def outage(tl: Timeline, seconds: float) -> list[tuple[float, bool]]:
    """Run ``seconds`` without CSMS contact; (time since last contact, contactor) per step."""
    rows = []
    for _ in range(round(seconds / PERIOD)):
        out = tl.advance(PERIOD)
        rows.append((tl.now - tl.last_contact_s, out.contactor_closed))
    return rows


def test_contactor_opens_within_one_period_of_30s_after_last_contact() -> None:
    tl = Timeline(cfg=ControlSection(comms_loss_timeout_s=30.0))
    closed_and_at(tl, 0.0)  # lease held at 0 W: the contactor is closed, nothing flows
    rows = outage(tl, 31.0)
    opened_at = next(age for age, closed in rows if not closed)
    assert all(closed for age, closed in rows if age < 30.0 - PERIOD - 1e-9)
    assert 30.0 - PERIOD - 1e-9 <= opened_at <= 30.0 + 1e-9
    assert EventCode.COMMS_LOSS_FAILSAFE in tl.events()


def test_fail_safe_under_power_is_at_zero_when_it_opens_at_30s() -> None:
    tl = Timeline(cfg=ControlSection(comms_loss_timeout_s=30.0, ramp_w_per_s=2000.0))
    closed_and_at(tl, -3000.0)
    rows = outage(tl, 33.0)
    powers = [o.setpoint_w for _, o in tl.outputs[-len(rows) :]]
    opened = next(i for i, (_, closed) in enumerate(rows) if not closed)
    # issue 13: the ramp (1.5 s at 2 kW/s) ends before the deadline, not after it
    assert 30.0 - PERIOD - 1e-9 <= rows[opened][0] <= 30.0 + 1e-9
    ramp_start = next(i for i, p in enumerate(powers) if p != -3000.0)
    assert all(p == 0.0 for p in powers[ramp_start + 15 : opened + 1])
    assert all(p == -3000.0 for (age, _), p in zip(rows, powers, strict=True) if age < 26.0)


def test_a_29s_outage_does_not_trip() -> None:
    tl = Timeline(cfg=ControlSection(comms_loss_timeout_s=30.0))
    closed_and_at(tl, -3000.0)
    rows = outage(tl, 29.0)
    tl.contact()
    rows += outage(tl, 5.0)
    assert all(closed for _, closed in rows)
    assert tl.state.commanded_w == -3000.0
    assert EventCode.COMMS_LOSS_FAILSAFE not in tl.events()


def test_fail_safe_recloses_only_with_contact_and_a_new_lease() -> None:
    tl = Timeline()
    closed_and_at(tl, -1000.0, valid_for_s=3600.0)
    outage(tl, 32.0)
    assert tl.state.failsafe
    assert not tl.state.contactor_closed
    tl.grant(-1000.0, 600.0)  # a lease without contact is not enough
    outage(tl, 1.0)
    assert tl.state.failsafe
    tl.contact()  # contact without a new lease is not enough either
    tl.run_for(1.0)
    assert tl.state.failsafe
    assert not tl.state.contactor_closed
    tl.contact()
    tl.grant(-1000.0, 600.0)
    out = tl.advance(PERIOD)
    assert EventCode.FAILSAFE_CLEARED in out.events
    assert out.contactor_closed


def test_after_a_stall_longer_than_the_revert_timer_power_ramps_up_from_zero() -> None:
    tl = Timeline(cfg=ControlSection(revert_timeout_s=5.0))
    closed_and_at(tl, -3000.0)
    tl.contact()
    out = tl.advance(6.0)  # the loop was stalled; the module reverted to 0 W meanwhile
    assert out.setpoint_w == pytest.approx(-2000.0 * 2 * PERIOD)  # two periods of credit
