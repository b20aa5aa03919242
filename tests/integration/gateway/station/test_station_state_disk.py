"""A state disk that refuses to sync (station/durability.py): the station keeps ticking and
renewing its lease, holds its TransactionEvents back instead of sending what a power cut
could take back, answers a profile it cannot make durable with InternalError, and delivers
every event, in order, once the disk syncs again."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.doubles.raw_csms import CallErrorReceived, RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from v2g_gateway.station import ChargingStation, durability

pytestmark = pytest.mark.integration

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


async def test_events_wait_for_a_refusing_disk_and_all_arrive_after(
    csms: RawCsms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = {"refuses": False}
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if disk["refuses"]:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(durability.os, "fsync", fsync)
    control = ScriptedControl()
    config = station_config(csms.url, tmp_path)
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)) as cs:
        await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
        disk["refuses"] = True
        control.plug_in(soc_pct=70.0)
        await eventually(lambda: cs.link.flush_failures >= 2)  # held back, tried again
        assert csms.calls("TransactionEvent") == []
        leases = len(control.leases)
        with pytest.raises(CallErrorReceived) as refused:
            await csms.call("SetChargingProfile", {"evseId": 0, "chargingProfile": DEFAULT_PROFILE})
        assert refused.value.code == "InternalError"
        await eventually(lambda: len(control.leases) > leases + 3)  # the tick goes on
        disk["refuses"] = False
        await csms.wait_for(lambda c: bool(c.calls("TransactionEvent")))
        await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")))
    events, _ = csms.delivered_transaction_events()
    assert events[0]["eventType"] == "Started"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.violations == []
