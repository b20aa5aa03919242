"""Cut the CSMS link mid-discharge (K01 maxOfflineDuration, E04 offline transactions):
the VPP profile stops applying after ``maxOfflineDuration`` and the lower profile takes over,
contact is no longer reported to the control loop, TransactionEvents queue on disk with
``offline: true`` and, after reconnect, arrive once each, in order, with continuous seqNo and
energy registers, also when the station restarts in the middle of the outage.

The control side here is scripted (it follows leases at once); the fail-safe and the real
module are exercised in ``test_station_sim.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.raw_csms import RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from v2g_gateway.station import ChargingStation

pytestmark = pytest.mark.integration

MAX_OFFLINE_S = 2


def vpp_profile(tx_id: str, *, invalid_after: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": 50,
        "stackLevel": 50,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "maxOfflineDuration": MAX_OFFLINE_S,
        "invalidAfterOfflineDuration": invalid_after,
        "chargingSchedule": [
            {
                "id": 50,
                "startSchedule": (now - timedelta(seconds=1)).isoformat(),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -7000.0}
                ],
            }
        ],
    }


DEFAULT_PROFILE = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2000.0}],
        }
    ],
}


def registers(event: dict[str, Any]) -> tuple[float, float]:
    values = {s["measurand"]: s["value"] for s in event["meterValue"][0]["sampledValue"]}
    return values["Energy.Active.Import.Register"], values["Energy.Active.Export.Register"]


async def start_discharge(
    csms: RawCsms, control: ScriptedControl, *, invalid_after: bool = False
) -> str:
    await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
    control.plug_in(soc_pct=70.0)
    await csms.wait_for(lambda c: bool(c.calls("TransactionEvent")))
    tx_id = str(csms.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"])
    ok = await csms.call("SetChargingProfile", {"evseId": 0, "chargingProfile": DEFAULT_PROFILE})
    assert ok["status"] == "Accepted"
    ok = await csms.call(
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": vpp_profile(tx_id, invalid_after=invalid_after)},
    )
    assert ok["status"] == "Accepted"
    await eventually(lambda: control.leases[-1].power_w == -7000.0)
    return tx_id


def check_delivery(csms: RawCsms, control: ScriptedControl) -> list[dict[str, Any]]:
    events, resends = csms.delivered_transaction_events()
    assert resends <= 1, "at most the event in flight at the cut is sent twice"
    seq = [e["seqNo"] for e in events]
    assert seq == list(range(len(events))), "every event once, in order, no gap"
    imports, exports = zip(*(registers(e) for e in events), strict=True)
    assert list(imports) == sorted(imports)
    assert list(exports) == sorted(exports)
    assert csms.violations == []
    return events


async def test_cut_link_mid_discharge(csms: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    config = station_config(csms.url, tmp_path)
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)):
        await start_discharge(csms, control)
        online_events = len(csms.calls("TransactionEvent"))
        csms.refuse = True
        csms.cut()
        cut_at = datetime.now(UTC)
        await eventually(lambda: control.leases[-1].power_w == 2000.0, timeout_s=MAX_OFFLINE_S + 3)
        # Not before maxOfflineDuration (counted from the last contact, so at most that long).
        held_s = (datetime.now(UTC) - cut_at).total_seconds()
        assert held_s <= MAX_OFFLINE_S + 1.0
        contacts = control.contacts
        await eventually(lambda: control.leases[-1].power_w == 2000.0 and len(control.leases) > 40)
        assert control.contacts == contacts, "no contact reported while offline"
        csms.refuse = False
        await eventually(lambda: control.leases[-1].power_w == -7000.0)
        await csms.wait_for(lambda c: any(e.get("offline") for e in c.calls("TransactionEvent")))
        await csms.wait_for(lambda c: c.connections == 2)
        await eventually(lambda: not csms.calls("TransactionEvent")[-1].get("offline"))
    events = check_delivery(csms, control)
    offline = [e for e in events if e.get("offline")]
    assert offline, "events from the outage are flagged offline"
    assert min(e["seqNo"] for e in offline) >= online_events
    assert {e["triggerReason"] for e in offline} >= {"OperationModeChanged"}


@pytest.mark.parametrize("invalid_after", [False, True], ids=["stays", "invalid-after"])
async def test_cut_link_with_station_restart(
    csms: RawCsms, tmp_path: Path, invalid_after: bool
) -> None:
    """Without invalidAfterOfflineDuration the VPP profile survives the restart but must stay
    inactive (the offline clock runs from the last contact before the restart); with it, the
    profile is gone for good."""
    control = ScriptedControl()
    ev = ScriptedEvLink(control)
    config = station_config(csms.url, tmp_path)
    async with ChargingStation(config, control=control, ev_link=ev):
        tx_id = await start_discharge(csms, control, invalid_after=invalid_after)
        csms.refuse = True
        csms.cut()
        await eventually(lambda: control.leases[-1].power_w == 2000.0, timeout_s=MAX_OFFLINE_S + 3)
    leases_before = len(control.leases)
    # Restart in the outage: the offline clock must not restart, so no -7 kW comes back.
    async with ChargingStation(config, control=control, ev_link=ev) as station:
        await eventually(lambda: len(control.leases) > leases_before + 10)
        assert {lease.power_w for lease in control.leases[leases_before:]} == {2000.0}
        assert [
            p.profile.id
            for p in station.smart.matching(
                evse_id=None, purpose=None, stack_level=None, profile_ids=None
            )
        ] == ([1] if invalid_after else [1, 50])
        control.unplug()
        await eventually(lambda: station.journal.running() == {})
        csms.refuse = False
        await csms.wait_for(
            lambda c: any(e["eventType"] == "Ended" for e in c.calls("TransactionEvent"))
        )
    events = check_delivery(csms, control)
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert events[-1]["offline"] is True
    assert registers(events[-1]) == pytest.approx(
        (control.energy_import_wh, control.energy_export_wh), abs=0.01
    )


async def test_silent_link_counts_as_offline(csms: RawCsms, tmp_path: Path) -> None:
    """The TCP connection stays up but nothing is answered: after two unanswered contact
    probes the station is offline from its last contact, so the VPP profile stops applying
    after maxOfflineDuration even before the websocket layer notices."""
    control = ScriptedControl()
    config = station_config(csms.url, tmp_path, response_timeout_s=30.0, ws_ping_interval_s=30.0)
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)) as cs:
        await start_discharge(csms, control)
        csms.mute = True
        await eventually(lambda: control.leases[-1].power_w == 2000.0, timeout_s=MAX_OFFLINE_S + 4)
        assert csms.connections == 1
        assert cs.online, "the websocket is still up"
        assert cs.offline_since() is not None
