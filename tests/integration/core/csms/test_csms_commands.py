"""Commands to a raw station: correlation, timeouts, results recorded, Rejected -> re-sync."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from tests.integration.core.csms.conftest import PASSWORD, CsmsUnderTest, RawStation
from v2g_common.ocpp21 import OcppCallError, OcppTimeout
from vpp_core.csms import StationOffline
from vpp_core.dispatch.ports import CommandResult, StationCommands

pytestmark = pytest.mark.integration

PROFILE = {
    "id": 700,
    "stack_level": 50,
    "charging_profile_purpose": "TxProfile",
    "charging_profile_kind": "Absolute",
    "transaction_id": "tx-1",
    "max_offline_duration": 30,
    "charging_schedule": [
        {
            "id": 1,
            "charging_rate_unit": "W",
            "start_schedule": "2026-03-01T12:00:00Z",
            "charging_schedule_period": [
                {
                    "start_period": 0,
                    "limit": 0,
                    "setpoint": -5000,
                    "discharge_limit": -5000,
                    "operation_mode": "CentralSetpoint",
                    "setpoint_L2": -1000,
                }
            ],
        }
    ],
}

Answer = Callable[[RawStation, list[Any]], Awaitable[None]]


async def _answering(station: RawStation, answer: Answer, calls: list[list[Any]]) -> None:
    """Answer every CALL the CSMS sends, with ``answer``."""
    while True:
        frame = json.loads(await station.ws.recv())
        if frame[0] == 2:
            calls.append(frame)
            await answer(station, frame)


def _result(payload: dict[str, Any]) -> Answer:
    async def answer(station: RawStation, frame: list[Any]) -> None:
        await station.ws.send(json.dumps([3, frame[1], payload]))

    return answer


async def _with_station(
    csms: CsmsUnderTest, answer: Answer, body: Callable[[list[list[Any]]], Awaitable[None]]
) -> list[list[Any]]:
    calls: list[list[Any]] = []
    async with csms.station("CS-0001", password=PASSWORD) as station:
        responder = asyncio.create_task(_answering(station, answer, calls))
        try:
            await body(calls)
        finally:
            responder.cancel()
    return calls


async def _command_log(csms: CsmsUnderTest) -> list[dict[str, Any]]:
    return csms.server.fleet.pending.commands


async def test_set_charging_profile_goes_out_with_exact_keys(csms: CsmsUnderTest) -> None:
    commands: StationCommands = csms.server.commands
    results: list[CommandResult] = []

    async def body(calls: list[list[Any]]) -> None:
        results.append(await commands.set_charging_profile("CS-0001", 1, PROFILE))

    calls = await _with_station(csms, _result({"status": "Accepted"}), body)
    assert results == [CommandResult("Accepted")]
    [frame] = calls
    assert frame[2] == "SetChargingProfile"
    period = frame[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period["setpoint"] == -5000
    assert period["setpoint_L2"] == -1000  # the key the ocpp library gets wrong
    assert period["operationMode"] == "CentralSetpoint"
    [logged] = await _command_log(csms)
    assert logged["action"] == "SetChargingProfile"
    assert logged["status"] == "Accepted"
    assert logged["latency_s"] >= 0
    assert orjson.loads(orjson.dumps(logged["request"])) == {
        "evse_id": 1,
        "charging_profile": PROFILE,
        "custom_data": None,
    }


async def test_rejected_profile_triggers_get_charging_profiles_resync(csms: CsmsUnderTest) -> None:
    async def answer(station: RawStation, frame: list[Any]) -> None:
        if frame[2] == "SetChargingProfile":
            reply = {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidSchedule"}}
            await station.ws.send(json.dumps([3, frame[1], reply]))
        elif frame[2] == "GetChargingProfiles":
            await station.ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
            report = {
                "requestId": frame[3]["requestId"],
                "chargingLimitSource": "CSO",
                "evseId": 1,
                "tbc": False,
                "chargingProfile": [
                    {
                        "id": 9,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Absolute",
                        "chargingSchedule": [
                            {
                                "id": 1,
                                "chargingRateUnit": "W",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000}],
                            }
                        ],
                    }
                ],
            }
            await station.ws.send(json.dumps([2, "r1", "ReportChargingProfiles", report]))

    results: list[CommandResult] = []

    async def body(calls: list[list[Any]]) -> None:
        results.append(await csms.server.commands.set_charging_profile("CS-0001", 1, PROFILE))
        async with asyncio.timeout(5):
            while csms.server.commands.resyncs_done == 0:  # noqa: ASYNC110 (counter, no event)
                await asyncio.sleep(0.01)

    calls = await _with_station(csms, answer, body)
    assert results == [CommandResult("Rejected", "InvalidSchedule")]
    assert [c[2] for c in calls] == ["SetChargingProfile", "GetChargingProfiles"]
    [reported] = csms.server.fleet.pending.profiles
    assert reported["profile_id"] == 9
    assert reported["purpose"] == "TxDefaultProfile"
    actions = [(r["action"], r.get("status")) for r in await _command_log(csms)]
    assert actions == [("SetChargingProfile", "Rejected"), ("GetChargingProfiles", "Accepted")]


async def test_timeout_and_callerror_are_raised_and_recorded(csms: CsmsUnderTest) -> None:
    async def answer(station: RawStation, frame: list[Any]) -> None:
        if frame[2] == "TriggerMessage":
            await station.ws.send(json.dumps([4, frame[1], "NotSupported", "no", {}]))
        # ClearChargingProfile: never answered

    async def body(calls: list[list[Any]]) -> None:
        with pytest.raises(OcppTimeout):
            await csms.server.commands.clear_charging_profile(
                "CS-0001", purpose="TxProfile", stack_level=50, timeout_s=0.3
            )
        with pytest.raises(OcppCallError) as error:
            await csms.server.commands.trigger_message("CS-0001", "MeterValues", evse_id=1)
        assert error.value.code == "NotSupported"

    calls = await _with_station(csms, answer, body)
    assert calls[0][3] == {
        "chargingProfileCriteria": {"chargingProfilePurpose": "TxProfile", "stackLevel": 50}
    }
    logged = await _command_log(csms)
    assert [r["action"] for r in logged] == ["ClearChargingProfile", "TriggerMessage"]
    assert logged[0]["error"].startswith("OcppTimeout")
    assert logged[1]["error"].startswith("OcppCallError")


async def test_other_commands_round_trip(csms: CsmsUnderTest) -> None:
    async def answer(station: RawStation, frame: list[Any]) -> None:
        if frame[2] == "GetCompositeSchedule":
            schedule = {
                "evseId": 1,
                "duration": 60,
                "scheduleStart": "2026-03-01T12:00:00Z",
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0, "setpoint": -4000}],
            }
            await station.ws.send(
                json.dumps([3, frame[1], {"status": "Accepted", "schedule": schedule}])
            )
        else:
            await station.ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))

    out: dict[str, Any] = {}

    async def body(calls: list[list[Any]]) -> None:
        cmd = csms.server.commands
        out["composite"] = await cmd.get_composite_schedule("CS-0001", evse_id=1, duration_s=60)
        out["update"] = await cmd.update_dynamic_schedule("CS-0001", 700, {"setpoint": -3000})
        out["allowed"] = await cmd.notify_allowed_energy_transfer("CS-0001", "tx-1", ["DC_BPT"])

    calls = await _with_station(csms, answer, body)
    result, schedule = out["composite"]
    assert result.status == "Accepted"
    assert schedule is not None
    assert schedule["charging_schedule_period"][0]["setpoint"] == -4000
    assert out["update"] == CommandResult("Accepted")
    assert out["allowed"] == CommandResult("Accepted")
    assert calls[1][3] == {"chargingProfileId": 700, "scheduleUpdate": {"setpoint": -3000}}
    assert calls[2][3] == {"transactionId": "tx-1", "allowedEnergyTransfer": ["DC_BPT"]}


async def test_command_to_offline_station_raises(csms: CsmsUnderTest) -> None:
    with pytest.raises(StationOffline):
        await csms.server.commands.set_charging_profile("CS-0002", 1, PROFILE)
