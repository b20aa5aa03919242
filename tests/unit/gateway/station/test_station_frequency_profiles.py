"""LocalFrequency profiles at the station (OCPP 2.1 K01 rules for ``operationMode``
LocalFrequency, ``v2xBaseline``, ``v2xFreqWattCurve``): accepted when executable, refused
with a reasonCode otherwise; the composite schedule carries the curve and the station hands it
to the control loop with the baseline as the lease's power, bounded by the period's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.unit.gateway.station.test_station_offline_clock import FakeClock
from tests.unit.gateway.station.test_station_profiles import TX, open_smart, wire
from v2g_common.ocpp21.payloads import codec_for
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.station import ChargingStation, StationConfig
from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.smart_charging import SmartCharging, composite_to_wire
from v2g_gateway.station.store import ProfileStore, open_state_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CURVE_WIRE = [
    {"frequency": 49.5, "power": -8000.0},
    {"frequency": 49.9, "power": 0.0},
    {"frequency": 50.1, "power": 0.0},
    {"frequency": 50.5, "power": 8000.0},
]
CURVE = FreqWattCurve.from_points([(p["frequency"], p["power"]) for p in CURVE_WIRE])


def local_frequency(**period: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "operation_mode": "LocalFrequency",
        "setpoint": None,
        "discharge_limit": None,
        "v2x_baseline": -1000.0,
        "v2x_freq_watt_curve": CURVE_WIRE,
    }
    values.update(period)
    return wire(period=values)


def config(tmp_path: Path) -> StationConfig:
    """Ticks only when the test says (``station.tick()``); the CSMS is never reached."""
    return station_config(
        "ws://127.0.0.1:9/ocpp", tmp_path, control_tick_s=3600.0, lease_valid_for_s=7200.0
    )


@pytest.fixture
def smart(tmp_path: Path) -> SmartCharging:
    return open_smart(tmp_path)


def test_a_local_frequency_profile_is_accepted_and_composed_with_its_curve(
    smart: SmartCharging,
) -> None:
    smart.install(1, local_frequency(), transactions=TX, now=NOW)
    period = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None).at(
        NOW
    )
    assert (period.mode, period.setpoint_w, period.freq_curve) == (
        "LocalFrequency",
        -1000.0,
        CURVE,
    )


def test_get_composite_schedule_shows_baseline_and_curve(smart: SmartCharging) -> None:
    smart.install(1, local_frequency(limit=9000.0), transactions=TX, now=NOW)
    schedule = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None)
    wire_form = composite_to_wire(schedule, unit="W", electrics=smart.electrics(1))
    (period,) = wire_form["charging_schedule_period"]
    assert period["operation_mode"] == "LocalFrequency"
    assert "setpoint" not in period
    assert period["v2x_baseline"] == -1000.0
    assert period["v2x_freq_watt_curve"] == CURVE_WIRE
    assert period["limit"] == 9000.0
    # ... and the GetCompositeScheduleResponse carrying it is valid OCPP 2.1.
    result = {"status": "Accepted", "schedule": wire_form}
    codec_for("ocpp2.1").encode_response("GetCompositeSchedule", result)


def repeat_point(n: int) -> list[dict[str, float]]:
    return [{"frequency": 49.0 + i * 0.1, "power": 0.0} for i in range(n)]


@pytest.mark.parametrize(
    ("case", "profile", "reason", "text"),
    [
        ("no baseline", local_frequency(v2x_baseline=None), "InvalidSchedule", "v2xBaseline"),
        ("no curve", local_frequency(v2x_freq_watt_curve=None), "InvalidSchedule", "Curve"),
        (
            "one point",
            local_frequency(v2x_freq_watt_curve=CURVE_WIRE[:1]),
            "InvalidSchedule",
            "2..20 points",
        ),
        (
            "21 points",
            local_frequency(v2x_freq_watt_curve=repeat_point(21)),
            "InvalidSchedule",
            "2..20 points",
        ),
        (
            "Hz descending",
            local_frequency(v2x_freq_watt_curve=CURVE_WIRE[::-1]),
            "InvalidSchedule",
            "ascending",
        ),
        (
            "Hz repeated",
            local_frequency(v2x_freq_watt_curve=[CURVE_WIRE[0], CURVE_WIRE[0]]),
            "InvalidSchedule",
            "ascending",
        ),
        (
            "unit A",
            {
                **local_frequency(),
                "charging_schedule": [
                    {**local_frequency()["charging_schedule"][0], "charging_rate_unit": "A"}
                ],
            },
            "InvalidValue",
            "chargingRateUnit W",
        ),
        ("with a setpoint", local_frequency(setpoint=-500.0), "InvalidSchedule", "not setpoint"),
        (
            "AFRRSignal is no OCPP 2.1 operationMode (aFRR is CentralFrequency)",
            wire(period={"operation_mode": "AFRRSignal"}),
            "UnsupportedParam",
            "AFRRSignal",
        ),
    ],
)
def test_what_the_station_cannot_execute_is_refused_with_a_reason(
    smart: SmartCharging, case: str, profile: dict[str, Any], reason: str, text: str
) -> None:
    with pytest.raises(ProfileRejected) as info:
        smart.install(1, profile, transactions=TX, now=NOW)
    assert info.value.reason_code == reason, case
    assert text in str(info.value), case


def test_a_curve_that_discharges_a_charge_only_session_is_refused(tmp_path: Path) -> None:
    smart = open_smart(tmp_path, lambda _evse: False)
    with pytest.raises(ProfileRejected) as info:
        smart.install(1, local_frequency(v2x_baseline=7000.0), transactions=TX, now=NOW)
    assert info.value.reason_code == "InvalidOperationMode"
    # Baseline 8 kW + curve >= -8 kW never discharges: a charge-only session may take it.
    smart.install(1, local_frequency(v2x_baseline=8000.0), transactions=TX, now=NOW)


def test_a_curve_on_another_mode_is_ignored_as_the_spec_says(smart: SmartCharging) -> None:
    profile = wire(period={"v2x_freq_watt_curve": CURVE_WIRE[:1]})  # CentralSetpoint
    smart.install(1, profile, transactions=TX, now=NOW)
    period = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None).at(
        NOW
    )
    assert (period.mode, period.freq_curve) == ("CentralSetpoint", None)


async def test_the_station_hands_curve_and_baseline_to_the_control_loop(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = open_state_db(cfg.state_dir)
    TransactionJournal(db).begin(1, "tx-1", NOW - timedelta(minutes=5))
    running = {1: ActiveTransaction("tx-1", NOW - timedelta(minutes=5))}
    profile = local_frequency(limit=6000.0, discharge_limit=-5000.0)
    smart = SmartCharging(cfg, ProfileStore(db), may_discharge=lambda _evse: True)
    smart.install(1, profile, transactions=running, now=NOW)
    db.close()
    control = ScriptedControl()
    control.plug_in()
    clock = FakeClock(NOW + timedelta(seconds=1))
    async with ChargingStation(
        cfg, control=control, ev_link=ScriptedEvLink(control), clock=clock
    ) as station:
        await station.tick()
        lease = control.leases[-1]
        assert (lease.power_w, lease.curve) == (-1000.0, CURVE)
        # The response stays within the period's limit and dischargeLimit.
        assert control.ev_limits[-1] == (6000.0, 5000.0)
        control.unplug()
        await station.tick()
        assert (control.leases[-1].power_w, control.leases[-1].curve) == (0.0, None)
