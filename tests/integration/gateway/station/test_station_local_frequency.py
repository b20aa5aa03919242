"""OCPP 2.1 LocalFrequency over real websockets (the raw-frames CSMS double): the wire's
camelCase v2xBaseline / v2xFreqWattCurve reach the control loop's lease, GetCompositeSchedule
shows them, and an unexecutable curve is Rejected with its reasonCode, the link alive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.raw_csms import RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.station import ChargingStation

pytestmark = pytest.mark.integration

CURVE = [
    {"frequency": 49.5, "power": -8000},
    {"frequency": 49.985, "power": 0},
    {"frequency": 50.015, "power": 0},
    {"frequency": 50.5, "power": 8000},
]


def tx_profile_with_period(tx_id: str, period: dict[str, Any]) -> dict[str, Any]:
    """An hour-long TxProfile at stackLevel 50 whose one schedule period is ``period``
    (``startPeriod`` 0 and the operation mode's fields)."""
    now = datetime.now(UTC)
    return {
        "id": 19,
        "stackLevel": 50,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "validTo": (now + timedelta(hours=1)).isoformat(),
        "maxOfflineDuration": 30,
        "chargingSchedule": [
            {
                "id": 19,
                "startSchedule": (now - timedelta(seconds=5)).isoformat(),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, **period}],
            }
        ],
    }


def local_frequency_profile(tx_id: str, curve: list[dict[str, Any]]) -> dict[str, Any]:
    period = {"operationMode": "LocalFrequency", "v2xBaseline": 1000, "v2xFreqWattCurve": curve}
    return tx_profile_with_period(tx_id, period)


async def test_local_frequency_over_the_wire(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    async with ChargingStation(
        station_config(csms.url, tmp_path), control=control, ev_link=ScriptedEvLink(control)
    ):
        await csms.wait_for(lambda c: len(c.calls("StatusNotification")) >= 1)
        control.plug_in(soc_pct=55.0)
        await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")))
        tx_id = csms.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"]

        descending = local_frequency_profile(tx_id, CURVE[::-1])
        answer = await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": descending})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "InvalidSchedule"
        assert "ascending" in answer["statusInfo"]["additionalInfo"]

        profile = local_frequency_profile(tx_id, CURVE)
        answer = await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
        assert answer["status"] == "Accepted"
        expected = FreqWattCurve.from_points([(p["frequency"], p["power"]) for p in CURVE])
        await eventually(lambda: control.leases[-1].curve == expected)
        assert control.leases[-1].power_w == 1000.0

        composite = await csms.call("GetCompositeSchedule", {"duration": 600, "evseId": 1})
        period = composite["schedule"]["chargingSchedulePeriod"][0]
        assert period["operationMode"] == "LocalFrequency"
        assert period["v2xBaseline"] == 1000
        assert period["v2xFreqWattCurve"] == CURVE
