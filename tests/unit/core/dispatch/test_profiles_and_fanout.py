"""Profile shapes (pure) and the bounded fan-out."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.core.dispatch.scripted_fleet import T0
from vpp_core.dispatch.conflicts import masking_reason
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.profiles import (
    ProfileSpec,
    dispatch_profile,
    resume_profile,
    schedule_update,
)

SPEC = ProfileSpec(
    profile_id=5,
    transaction_id="tx",
    stack_level=50,
    valid_from=T0,
    valid_to=T0 + timedelta(minutes=15),
    max_offline_duration_s=30,
    kind="Dynamic",
    legacy_negative_limit=False,
)


def test_dynamic_discharge_profile() -> None:
    p = dispatch_profile(SPEC, -7_000.0)
    assert p["charging_profile_kind"] == "Dynamic"
    assert "start_schedule" not in p["charging_schedule"][0]
    assert p["charging_schedule"][0]["charging_schedule_period"] == [
        {
            "start_period": 0,
            "setpoint": -7000.0,
            "discharge_limit": -7000.0,
            "operation_mode": "CentralSetpoint",
        }
    ]


def test_charge_setpoint_has_a_limit_and_no_discharge() -> None:
    period = dispatch_profile(SPEC, 4_000.0)["charging_schedule"][0]["charging_schedule_period"][0]
    assert period == {
        "start_period": 0,
        "setpoint": 4000.0,
        "discharge_limit": 0.0,
        "operation_mode": "CentralSetpoint",
        "limit": 4000.0,
    }
    assert schedule_update(-3_000.0) == {"setpoint": -3000.0, "discharge_limit": -3000.0}


SPEC_201 = replace(SPEC, kind="Absolute", ocpp_version="ocpp2.0.1")
#: What OCPP 2.0.1's ChargingProfileType / ChargingSchedulePeriodType do not have.
ONLY_21 = {"max_offline_duration", "invalid_after_offline_duration", "dyn_update_interval"}


def test_a_201_station_gets_a_limit_per_period_only() -> None:
    """Issue 18: the subprotocol decides the shape (the 2.0.1 schema refuses the 2.1 keys;
    the mixed-fleet test validates this profile on the wire against the OCA schema)."""
    p = dispatch_profile(SPEC_201, 4_000.0)
    assert not ONLY_21 & set(p)
    assert p["charging_profile_kind"] == "Absolute"
    assert p["charging_schedule"][0]["charging_schedule_period"] == [
        {"start_period": 0, "limit": 4000.0}
    ]
    assert p["charging_schedule"][0]["start_schedule"] == "2026-01-15T12:00:00Z"
    # the 2.1 shape of the same spec keeps its offline rules
    assert ONLY_21 - {"dyn_update_interval"} <= set(dispatch_profile(SPEC, 4_000.0))


def test_a_201_station_is_never_sent_a_discharge() -> None:
    with pytest.raises(ValueError, match=r"2\.0\.1 station cannot discharge"):
        dispatch_profile(SPEC_201, -1.0)
    with pytest.raises(ValueError, match="no Dynamic profiles"):
        replace(SPEC_201, kind="Dynamic")


def test_a_201_station_resumes_with_a_plain_limit() -> None:
    p = resume_profile(SPEC_201, charge_limit_w=11_000.0, start=T0)
    assert not ONLY_21 & set(p)
    assert p["charging_schedule"][0]["charging_schedule_period"] == [
        {"start_period": 0, "limit": 11000.0}
    ]
    resumed_21 = resume_profile(SPEC, charge_limit_w=11_000.0, start=T0)
    assert resumed_21["charging_schedule"][0]["charging_schedule_period"][0]["operation_mode"] == (
        "ChargingOnly"
    )


@pytest.mark.parametrize(
    ("installed", "masked"),
    [
        ({"id": 1, "stack_level": 51, "charging_profile_purpose": "TxProfile"}, True),
        ({"id": 1, "stack_level": 50, "charging_profile_purpose": "TxProfile"}, True),
        ({"id": 5, "stack_level": 50, "charging_profile_purpose": "TxProfile"}, False),  # our own
        ({"id": 1, "stack_level": 49, "charging_profile_purpose": "TxProfile"}, False),
        ({"id": 1, "stack_level": 90, "charging_profile_purpose": "TxDefaultProfile"}, False),
        (
            {"id": 1, "stack_level": 90, "charging_profile_purpose": "TxProfile", "evse_id": 2},
            False,
        ),
        (
            {
                "id": 1,
                "stack_level": 90,
                "charging_profile_purpose": "TxProfile",
                "transaction_id": "old",
            },
            False,
        ),
        (
            {
                "id": 1,
                "stack_level": 90,
                "charging_profile_purpose": "TxProfile",
                "valid_to": "2026-01-15T11:00:00Z",
            },
            False,
        ),
    ],
)
def test_masking(installed: dict[str, object], masked: bool) -> None:
    reason = masking_reason(
        [installed], SessionKey("CS", 1, "tx"), stack_level=50, own_profile_id=5, window_start=T0
    )
    assert (reason is not None) == masked


async def test_fan_out_bounds_concurrency_keeps_order_and_returns_errors() -> None:
    in_flight = peak = 0

    async def call(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        if i == 3:
            raise ConnectionError("gone")
        if i == 5:
            await asyncio.Event().wait()  # never answers
        return i * 10

    calls = [lambda i=i: call(i) for i in range(20)]
    results = await fan_out(calls, concurrency=4, timeout_s=0.05)
    assert peak <= 4
    assert isinstance(results[3], ConnectionError)
    assert isinstance(results[5], TimeoutError)
    assert [r for i, r in enumerate(results) if i not in (3, 5)] == [
        i * 10 for i in range(20) if i not in (3, 5)
    ]
