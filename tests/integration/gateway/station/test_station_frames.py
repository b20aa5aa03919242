"""The station against the raw-websockets CSMS double: every frame it sends validates against
the shipped OCA 2.1 schemas, through a whole session (B01 boot, G01 status, E02 transaction,
Q01 NotifyEVChargingNeeds, K01 SetChargingProfile, K08 GetCompositeSchedule, K09
GetChargingProfiles, K10 ClearChargingProfile, UpdateDynamicSchedule,
PullDynamicScheduleUpdate,
NotifyAllowedEnergyTransfer), and malformed or schema-invalid CALLs get CALLERRORs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.raw_csms import CallErrorReceived, CallErrorReply, RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from v2g_gateway.station import ChargingStation
from v2g_gateway.station.config import EvseConfig
from v2g_gateway.station.service import StationService

pytestmark = pytest.mark.integration


def tx_events(csms: RawCsms) -> list[dict[str, Any]]:
    return csms.calls("TransactionEvent")


def statuses(csms: RawCsms) -> list[str]:
    return [p["connectorStatus"] for p in csms.calls("StatusNotification")]


def discharge_profile(pid: int, stack: int, setpoint_w: float, tx_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "validFrom": (now - timedelta(seconds=5)).isoformat(),
        "validTo": (now + timedelta(hours=1)).isoformat(),
        "maxOfflineDuration": 30,
        "chargingSchedule": [
            {
                "id": pid,
                "startSchedule": (now - timedelta(seconds=5)).isoformat(),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {
                        "startPeriod": 0,
                        "operationMode": "CentralSetpoint",
                        "setpoint": setpoint_w,
                        "dischargeLimit": -10000,
                    }
                ],
            }
        ],
    }


async def test_every_frame_validates_through_a_session(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    ev = ScriptedEvLink(control)
    async with ChargingStation(station_config(csms.url, tmp_path), control=control, ev_link=ev):
        await csms.wait_for(lambda c: len(c.calls("StatusNotification")) >= 1)
        control.plug_in(soc_pct=55.0)
        await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")))
        tx_id = tx_events(csms)[0]["transactionInfo"]["transactionId"]

        answer = await csms.call(
            "SetChargingProfile",
            {"evseId": 1, "chargingProfile": discharge_profile(7, 50, -7000, tx_id)},
        )
        assert answer["status"] == "Accepted"
        await csms.wait_for(
            lambda c: any(e["triggerReason"] == "OperationModeChanged" for e in tx_events(c))
        )
        composite = await csms.call("GetCompositeSchedule", {"duration": 600, "evseId": 1})
        assert composite["status"] == "Accepted"
        assert composite["schedule"]["chargingSchedulePeriod"][0]["setpoint"] == -7000

        dynamic = discharge_profile(8, 60, -3000, tx_id)
        dynamic["chargingProfileKind"] = "Dynamic"
        del dynamic["chargingSchedule"][0]["startSchedule"]
        dynamic["dynUpdateInterval"] = 2
        csms.answer(
            "PullDynamicScheduleUpdate",
            lambda p: {"status": "Accepted", "scheduleUpdate": {"setpoint": -4000}},
        )
        assert (await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": dynamic}))[
            "status"
        ] == "Accepted"
        update = await csms.call(
            "UpdateDynamicSchedule", {"chargingProfileId": 8, "scheduleUpdate": {"setpoint": -5000}}
        )
        assert update["status"] == "Accepted"
        await eventually(lambda: control.leases[-1].power_w == -5000)
        # dynUpdateInterval 2 s: the station pulls and applies the CSMS's new value.
        await csms.wait_for(lambda c: bool(c.calls("PullDynamicScheduleUpdate")))
        assert csms.calls("PullDynamicScheduleUpdate")[0] == {"chargingProfileId": 8}
        await eventually(lambda: control.leases[-1].power_w == -4000)

        assert (
            await csms.call(
                "GetChargingProfiles",
                {"requestId": 3, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}},
            )
        )["status"] == "Accepted"
        await csms.wait_for(lambda c: bool(c.calls("ReportChargingProfiles")))
        reported = csms.calls("ReportChargingProfiles")[0]
        assert sorted(p["id"] for p in reported["chargingProfile"]) == [7, 8]

        allowed = await csms.call(
            "NotifyAllowedEnergyTransfer", {"transactionId": tx_id, "allowedEnergyTransfer": ["DC"]}
        )
        assert allowed["status"] == "Accepted"
        await csms.wait_for(lambda c: len(c.calls("NotifyEVChargingNeeds")) >= 2)
        assert control.ev_limits[-1] == (11000.0, 0.0)

        cleared = await csms.call(
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "TxProfile",
                    "stackLevel": 60,
                }
            },
        )
        assert cleared["status"] == "Accepted"

        control.trip_code = "GROUND_FAULT"
        await csms.wait_for(lambda c: statuses(c)[-1] == "Faulted")
        control.trip_code = None
        await csms.wait_for(lambda c: statuses(c)[-1] == "Occupied")

        control.unplug()
        await csms.wait_for(lambda c: tx_events(c)[-1]["eventType"] == "Ended")
        await csms.wait_for(lambda c: statuses(c)[-1] == "Available")

    assert csms.violations == []
    assert len(csms.frames) > 20
    needs = csms.calls("NotifyEVChargingNeeds")[0]["chargingNeeds"]
    assert needs["v2xChargingParameters"]["maxDischargePower"] == 10000
    assert needs["v2xChargingParameters"]["targetSoC"] == 80
    assert needs["availableEnergyTransfer"] == ["DC_BPT", "DC"]
    assert needs["controlMode"] == "DynamicControl"
    assert "departureTime" in needs
    events = tx_events(csms)
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started"
    assert events[0]["triggerReason"] == "CablePluggedIn"
    reasons = {e["triggerReason"] for e in events}
    assert {"OperationModeChanged", "ChargingRateChanged", "EVCommunicationLost"} <= reasons
    measurands = {s["measurand"] for s in events[1]["meterValue"][0]["sampledValue"]}
    assert measurands == {
        "SoC",
        "Power.Active.Import",
        "Power.Active.Export",
        "Energy.Active.Import.Register",
        "Energy.Active.Export.Register",
    }


async def test_malformed_and_invalid_calls_get_callerrors(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    async with ChargingStation(station_config(csms.url, tmp_path), control=control):
        await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
        answers = []
        for message_id, text in [
            ("m1", json.dumps([2, "m1", "SetChargingProfile", {"chargingProfile": {}}])),
            ("m2", json.dumps([2, "m2", "GetCompositeSchedule", {"duration": "x", "evseId": 1}])),
            ("m3", json.dumps([2, "m3", "NoSuchAction", {}])),
            ("m4", json.dumps([2, "m4", "ClearChargingProfile", {"unknownKey": 1}])),
        ]:
            waiter = asyncio.ensure_future(csms.wait_answer(message_id))
            await csms.send_raw(text)
            answers.append(await waiter)
        assert [a.kind for a in answers] == [4, 4, 4, 4]
        assert answers[2].message[2] in ("NotImplemented", "NotSupported")
        waiter = asyncio.ensure_future(csms.wait_answer("-1"))
        await csms.send_raw("[2, this is not json")
        assert (await waiter).kind == 4
        with pytest.raises(CallErrorReceived):
            await csms.call("UnlockConnector", {"evseId": 1, "connectorId": 1})
        # The same connection still serves valid CALLs.
        composite = await csms.call("GetCompositeSchedule", {"duration": 60, "evseId": 1})
        assert composite["status"] == "Accepted"
        assert csms.connections == 1
    assert csms.violations == []


async def test_supervisor_service_runs_and_stops_at_zero(csms: RawCsms, tmp_path: Path) -> None:
    """The supervisor's view: ``StationService.run(channel)`` until cancelled; on the way out
    the last lease is 0 W (the control loop ramps down now, not at lease expiry)."""
    control = ScriptedControl()
    service = StationService(station_config(csms.url, tmp_path), ev_link=ScriptedEvLink(control))
    task = asyncio.create_task(service.run(control), name="service:station")
    control.plug_in()
    await eventually(lambda: bool(control.leases) and control.leases[-1].power_w == 11000.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert control.leases[-1].power_w == 0.0
    assert csms.violations == []


async def test_two_evses_keep_their_own_transactions(csms: RawCsms, tmp_path: Path) -> None:
    left, right = ScriptedControl(), ScriptedControl()
    config = station_config(
        csms.url, tmp_path, evses=[EvseConfig(id=1), EvseConfig(id=2, connector_id=1)]
    )
    links = {1: ScriptedEvLink(left), 2: ScriptedEvLink(right)}
    async with ChargingStation(config, control={1: left, 2: right}, ev_link=links):
        await csms.wait_for(lambda c: len(c.calls("StatusNotification")) >= 2)
        left.plug_in()
        right.plug_in()
        await csms.wait_for(lambda c: len(c.calls("NotifyEVChargingNeeds")) >= 2)
        started = {
            e["evse"]["id"]: e["transactionInfo"]["transactionId"]
            for e in tx_events(csms)
            if e["eventType"] == "Started"
        }
        assert set(started) == {1, 2}
        assert started[1] != started[2]
        answer = await csms.call(
            "SetChargingProfile",
            {"evseId": 2, "chargingProfile": discharge_profile(9, 50, -5000, started[2])},
        )
        assert answer["status"] == "Accepted"
        wrong = await csms.call(
            "SetChargingProfile",
            {"evseId": 1, "chargingProfile": discharge_profile(10, 50, -5000, started[2])},
        )
        assert wrong["status"] == "Rejected"
        await eventually(lambda: right.leases[-1].power_w == -5000)
        assert left.leases[-1].power_w == 11000.0
        left.unplug()
        await csms.wait_for(lambda c: any(e["eventType"] == "Ended" for e in tx_events(c)))
    by_tx: dict[str, list[int]] = {}
    for event in tx_events(csms):
        by_tx.setdefault(event["transactionInfo"]["transactionId"], []).append(event["seqNo"])
    assert all(seq == list(range(len(seq))) for seq in by_tx.values())
    assert csms.violations == []


async def test_refused_event_is_retried_then_dropped(csms: RawCsms, tmp_path: Path) -> None:
    """A TransactionEvent the CSMS keeps refusing with a CALLERROR is retried
    ``transaction_message_attempts`` times, then dropped, so later events still flow."""
    refused: list[int] = []

    def answer(payload: dict[str, Any]) -> dict[str, Any] | CallErrorReply:
        if payload["seqNo"] == 0:
            refused.append(payload["seqNo"])
            return CallErrorReply("FormationViolation", "scripted")
        return {}

    csms.answer("TransactionEvent", answer)
    control = ScriptedControl()
    config = station_config(
        csms.url, tmp_path, transaction_message_attempts=3, transaction_message_retry_interval_s=0.1
    )
    async with ChargingStation(config, control=control):
        await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
        control.plug_in()
        await csms.wait_for(lambda c: any(e["seqNo"] > 0 for e in tx_events(c)))
    assert refused == [0, 0, 0]
    assert csms.connections == 1, "a refused event does not cost the connection"
    assert csms.violations == []
