"""aFRR at the station (OCPP 2.1 ``CentralFrequency`` periods with ``v2xSignalWattCurve``, and
the CSMS's ``AFRRSignalRequest`` stream): what is accepted and refused with which reasonCode,
the composite schedule and GetCompositeSchedule carry the curve, and the signal stream's
timing rules (in force from its timestamp, stale after its validity, dropped with the link)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.gateway.station.test_station_profiles import TX, open_smart, wire
from v2g_common.ocpp21.payloads import codec_for
from v2g_gateway.station.afrr import AfrrSignals, afrr_target_w
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.signal_profiles import SignalWattCurve
from v2g_gateway.station.smart_charging import SmartCharging, composite_to_wire

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CURVE_WIRE = [
    {"signal": -100, "power": -10000.0},
    {"signal": 0, "power": 0.0},
    {"signal": 100, "power": 10000.0},
]
CURVE = SignalWattCurve.from_points([(p["signal"], p["power"]) for p in CURVE_WIRE])


def central_frequency(**period: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "operation_mode": "CentralFrequency",
        "setpoint": None,
        "discharge_limit": None,
        "v2x_baseline": -1000.0,
        "v2x_signal_watt_curve": CURVE_WIRE,
    }
    values.update(period)
    return wire(period=values)


@pytest.fixture
def smart(tmp_path: Path) -> SmartCharging:
    return open_smart(tmp_path)


def test_the_signal_curve_interpolates_and_holds_its_ends() -> None:
    assert [CURVE.value_w(s) for s in (-500, -100, -50, 0, 25, 100, 900)] == [
        -10000.0,
        -10000.0,
        -5000.0,
        0.0,
        2500.0,
        10000.0,
        10000.0,
    ]


def test_a_central_frequency_profile_is_accepted_and_composed(smart: SmartCharging) -> None:
    smart.install(1, central_frequency(limit=6000.0), transactions=TX, now=NOW)
    schedule = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None)
    period = schedule.at(NOW)
    assert (period.mode, period.setpoint_w, period.signal_curve) == (
        "CentralFrequency",
        -1000.0,
        CURVE,
    )
    assert period.freq_curve is None
    wire_form = composite_to_wire(schedule, unit="W", electrics=smart.electrics(1))
    wire_period = wire_form["charging_schedule_period"][0]
    assert wire_period["v2x_baseline"] == -1000.0
    assert wire_period["v2x_signal_watt_curve"] == [
        {"signal": p["signal"], "power": p["power"]} for p in CURVE_WIRE
    ]
    assert "setpoint" not in wire_period
    # GetCompositeSchedule's answer in that form passes the OCA 2.1 schema.
    codec_for("ocpp2.1").encode_response(
        "GetCompositeSchedule", {"status": "Accepted", "schedule": wire_form}
    )


def test_the_baseline_is_optional_as_the_schema_says(smart: SmartCharging) -> None:
    smart.install(1, central_frequency(v2x_baseline=None), transactions=TX, now=NOW)
    period = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None)
    assert period.at(NOW).setpoint_w == 0.0


@pytest.mark.parametrize(
    ("case", "profile", "reason", "text"),
    [
        (
            "no curve",
            central_frequency(v2x_signal_watt_curve=None),
            "NoSignalWattCurve",
            "needs v2xSignalWattCurve",
        ),
        (
            "one point",
            central_frequency(v2x_signal_watt_curve=CURVE_WIRE[:1]),
            "InvalidSchedule",
            "2..20 points",
        ),
        (
            "21 points",
            central_frequency(
                v2x_signal_watt_curve=[{"signal": i, "power": 0.0} for i in range(21)]
            ),
            "InvalidSchedule",
            "2..20 points",
        ),
        (
            "signals descending",
            central_frequency(v2x_signal_watt_curve=CURVE_WIRE[::-1]),
            "InvalidSchedule",
            "signals must be strictly ascending",
        ),
        (
            "unit A",
            {
                **central_frequency(),
                "charging_schedule": [
                    {**central_frequency()["charging_schedule"][0], "charging_rate_unit": "A"}
                ],
            },
            "InvalidValue",
            "chargingRateUnit W",
        ),
        (
            "with a setpoint",
            central_frequency(setpoint=-500.0),
            "InvalidSchedule",
            "not setpoint",
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


def test_central_frequency_in_a_cap_is_refused(smart: SmartCharging) -> None:
    cap = central_frequency()
    cap.pop("transaction_id")
    cap["charging_profile_purpose"] = "ChargingStationMaxProfile"
    with pytest.raises(ProfileRejected) as info:
        smart.install(0, cap, transactions=TX, now=NOW)
    assert (info.value.reason_code, "takes limits" in info.value.detail) == (
        "InvalidSchedule",
        True,
    )


def test_a_curve_that_discharges_a_charge_only_session_is_refused(tmp_path: Path) -> None:
    smart = open_smart(tmp_path, lambda _evse: False)
    with pytest.raises(ProfileRejected) as info:
        smart.install(1, central_frequency(v2x_baseline=9000.0), transactions=TX, now=NOW)
    assert info.value.reason_code == "InvalidOperationMode"
    # Baseline 10 kW + curve >= -10 kW never discharges: a charge-only session may take it.
    smart.install(1, central_frequency(v2x_baseline=10000.0), transactions=TX, now=NOW)


# --- the signal stream -----------------------------------------------------------------------


def test_a_signal_is_in_force_from_its_timestamp_until_the_next_or_its_validity() -> None:
    signals = AfrrSignals(valid_for_s=12.0)
    assert signals.current(now=NOW) is None
    signals.accept(40, NOW, now=NOW)
    signals.accept(-60, NOW + timedelta(seconds=4), now=NOW)  # scheduled ahead
    assert signals.current(now=NOW + timedelta(seconds=3.9)) == 40
    assert signals.current(now=NOW + timedelta(seconds=4)) == -60
    assert signals.current(now=NOW + timedelta(seconds=15.9)) == -60
    assert signals.current(now=NOW + timedelta(seconds=16)) is None  # the stream stopped


def test_a_late_signal_for_an_earlier_instant_does_not_replace_a_newer_one() -> None:
    signals = AfrrSignals(valid_for_s=12.0)
    signals.accept(50, NOW, now=NOW)
    signals.accept(10, NOW - timedelta(seconds=4), now=NOW)  # overtaken on the way
    assert signals.current(now=NOW) == 50


@pytest.mark.parametrize(
    ("offset_s", "text"),
    [(-12.0, "older than the signal validity"), (12.5, "ahead of the station's clock")],
)
def test_stale_or_far_future_signals_are_refused(offset_s: float, text: str) -> None:
    signals = AfrrSignals(valid_for_s=12.0)
    signals.accept(5, NOW, now=NOW)
    with pytest.raises(ProfileRejected) as info:
        signals.accept(90, NOW + timedelta(seconds=offset_s), now=NOW)
    assert info.value.reason_code == "ValueOutOfRange"
    assert text in info.value.detail
    assert signals.current(now=NOW) == 5  # the refused one changed nothing


def test_a_dropped_stream_gives_no_response() -> None:
    signals = AfrrSignals(valid_for_s=12.0)
    signals.accept(100, NOW, now=NOW)
    assert signals.response_w(CURVE, now=NOW) == 10000.0
    signals.drop()
    assert signals.response_w(CURVE, now=NOW) == 0.0


def test_the_target_stays_within_the_period_limits() -> None:
    assert afrr_target_w(-1000.0, -10000.0, limit_w=6000.0, discharge_limit_w=-5000.0) == -5000.0
    assert afrr_target_w(-1000.0, 10000.0, limit_w=6000.0, discharge_limit_w=-5000.0) == 6000.0
    assert afrr_target_w(-1000.0, 2500.0, limit_w=None, discharge_limit_w=None) == 1500.0
