"""aFRR over real websockets (the raw-frames CSMS double, OCA schemas both ways): a
CentralFrequency TxProfile with a v2xSignalWattCurve, then AFRRSignalRequests: the control
loop's lease follows baseline + curve(signal); a signal without a CentralFrequency profile,
or stale on arrival, is Rejected with its reasonCode; the stream's end and a lost link fall
back to the baseline; ``operationMode: AFRRSignal`` is no OCPP 2.1 value (CALLERROR)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.raw_csms import RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from tests.integration.gateway.station.test_station_local_frequency import tx_profile_with_period
from v2g_gateway.station import ChargingStation

pytestmark = pytest.mark.integration

CURVE = [
    {"signal": -100, "power": -8000},
    {"signal": 0, "power": 0},
    {"signal": 100, "power": 8000},
]


def central_frequency_profile(tx_id: str, *, mode: str = "CentralFrequency") -> dict[str, Any]:
    period = {"operationMode": mode, "v2xBaseline": 1000, "v2xSignalWattCurve": CURVE}
    return tx_profile_with_period(tx_id, period)


def afrr(signal: int, *, age_s: float = 0.0) -> dict[str, Any]:
    return {
        "timestamp": (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(),
        "signal": signal,
    }


async def started(csms: RawCsms, control: ScriptedControl) -> str:
    await csms.wait_for(lambda c: len(c.calls("StatusNotification")) >= 1)
    control.plug_in(soc_pct=55.0)
    await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")))
    return str(csms.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"])


def lease_w(control: ScriptedControl) -> float:
    return control.leases[-1].power_w


async def test_afrr_signals_drive_the_lease(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    config = station_config(csms.url, tmp_path, afrr_signal_valid_for_s=3.0)
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)):
        tx_id = await started(csms, control)
        answer = await csms.call("AFRRSignal", afrr(50))
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "NotEnabled"

        profile = central_frequency_profile(tx_id)
        answer = await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
        assert answer["status"] == "Accepted"
        await eventually(lambda: lease_w(control) == 1000.0)  # baseline, no signal yet
        composite = await csms.call("GetCompositeSchedule", {"duration": 600, "evseId": 1})
        period = composite["schedule"]["chargingSchedulePeriod"][0]
        assert (period["operationMode"], period["v2xSignalWattCurve"]) == (
            "CentralFrequency",
            CURVE,
        )

        assert (await csms.call("AFRRSignal", afrr(-50)))["status"] == "Accepted"
        await eventually(lambda: lease_w(control) == 1000.0 - 4000.0)
        assert control.leases[-1].curve is None  # a plain setpoint: the law's clamps apply

        stale = await csms.call("AFRRSignal", afrr(100, age_s=60.0))
        assert stale["status"] == "Rejected"
        assert stale["statusInfo"]["reasonCode"] == "ValueOutOfRange"
        assert lease_w(control) == -3000.0  # the refused signal changed nothing

        # The stream stops: 3 s after its timestamp the signal no longer counts.
        await eventually(lambda: lease_w(control) == 1000.0, timeout_s=8.0)
    assert csms.violations == []


async def test_afrr_does_not_outlive_the_link(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    config = station_config(csms.url, tmp_path, afrr_signal_valid_for_s=600.0)
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)):
        tx_id = await started(csms, control)
        profile = central_frequency_profile(tx_id)
        await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
        await csms.call("AFRRSignal", afrr(100))
        await eventually(lambda: lease_w(control) == 9000.0)
        csms.refuse = True
        csms.cut()
        # Valid for 10 minutes, but the link is gone: back to the baseline within seconds
        # (the profile itself applies for its maxOfflineDuration, 30 s).
        await eventually(lambda: lease_w(control) == 1000.0, timeout_s=8.0)
    assert csms.violations == []


async def test_afrr_signal_is_no_operation_mode_of_ocpp_2_1(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    async with ChargingStation(
        station_config(csms.url, tmp_path), control=control, ev_link=ScriptedEvLink(control)
    ):
        tx_id = await started(csms, control)
        profile = central_frequency_profile(tx_id, mode="AFRRSignal")
        payload = {"evseId": 1, "chargingProfile": profile}
        await csms.send_raw(json.dumps([2, "afrr-mode", "SetChargingProfile", payload]))
        answer = await csms.wait_answer("afrr-mode")
        assert answer.kind == 4
        assert answer.message[2] == "PropertyConstraintViolation"
        assert "'AFRRSignal' is not one of" in answer.message[3]
        assert "CentralFrequency" in answer.message[3]
