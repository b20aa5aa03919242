"""The drop-out race of issue 13 item 2, over real websockets into a real fleet database: a
station leaves while its re-dispatch command is in flight, so one batch holds a failed
command (``error``) and an answered one (``status``). On main that batch failed as one
``executemany`` and was retried for ever: nothing reached the database again. Now the
command log, samples and transactions keep landing, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.doubles.waiting import eventually_async
from tests.integration.core.csms.conftest import CsmsUnderTest, RawStation, tx_payload
from v2g_common.ocpp21 import OcppConnectionClosed
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.fleet import FleetState, StationEntry, WriteBehind
from vpp_core.fleet.store import WriteBatch
from vpp_core.fleet.writer_thread import StoreThread

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATIONS = [
    StationEntry("CS-0002", 3, True, "site-a", "north", None),
    StationEntry("CS-0003", 3, True, "site-b", "south", None),
]
PROFILE = {
    "id": 700,
    "stack_level": 50,
    "charging_profile_purpose": "TxProfile",
    "charging_profile_kind": "Absolute",
    "charging_schedule": [
        {
            "id": 1,
            "charging_rate_unit": "W",
            "charging_schedule_period": [{"start_period": 0, "limit": 0.0, "setpoint": -5000.0}],
        }
    ],
}


class GatedWrites:
    """The real store thread behind a gate the test opens: holds the write-behind's next
    write while the race happens, so both outcomes fall into one batch (as they do when
    the writer is busy with the previous one)."""

    def __init__(self, writes: StoreThread) -> None:
        self.writes = writes
        self.gate = asyncio.Event()

    async def write(self, batch: WriteBatch) -> Any:  # WriteReport (None on main)
        await self.gate.wait()
        return await self.writes.write(batch)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def next_call(station: RawStation, action: str) -> list[Any]:
    async with asyncio.timeout(5):
        while True:
            frame = json.loads(await station.ws.recv())
            if frame[0] == 2 and frame[2] == action:
                return list(frame)


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        await eventually_async(check, timeout_s=15.0)
    except TimeoutError:
        raise AssertionError(f"{what}: not in the database after 15 s") from None


async def test_station_leaving_mid_command_does_not_stop_the_fleet_database(
    csms_config: Callable[..., CsmsConfig], pki: Any, fleet_db_url: str
) -> None:
    fleet = FleetState()
    fleet.set_entries(STATIONS)
    writes = StoreThread(fleet_db_url)
    await writes.start()
    gated = GatedWrites(writes)
    writer = WriteBehind(fleet, gated, interval_s=0.05, retry_max_s=0.2)
    try:
        async with asyncio.TaskGroup() as tg, CsmsServer(csms_config(), fleet) as server:
            tg.create_task(writer.run(), name="fleet-write-behind")
            csms = CsmsUnderTest(server, pki)
            async with (
                csms.station("CS-0002", cert_identity="CS-0002") as leaving,
                csms.station("CS-0003", cert_identity="CS-0003") as staying,
            ):
                for station in (leaving, staying):
                    answer = await station.call("TransactionEvent", tx_payload("Started", 0, ts(0)))
                    assert answer[0] == 3
                # the re-dispatch: one command per station, in flight together
                commands = server.commands
                sends = [
                    asyncio.create_task(commands.set_charging_profile(sid, 1, PROFILE))
                    for sid in ("CS-0002", "CS-0003")
                ]
                await next_call(leaving, "SetChargingProfile")
                await leaving.ws.close()  # the station leaves before it answers
                call = await next_call(staying, "SetChargingProfile")
                await staying.ws.send(json.dumps([3, call[1], {"status": "Accepted"}]))
                with pytest.raises(OcppConnectionClosed):
                    await sends[0]
                assert (await sends[1]).status == "Accepted"
                gated.gate.set()  # both outcomes are in the next batch

                # the staying station keeps transacting; all of it must land
                for seq in range(1, 4):
                    payload = tx_payload("Updated", seq, ts(seq * 10), export_wh=500 + seq)
                    assert (await staying.call("TransactionEvent", payload))[0] == 3
                ended = tx_payload("Ended", 4, ts(40))
                assert (await staying.call("TransactionEvent", ended))[0] == 3

                async def logged() -> bool:
                    rows = await writes.run(lambda s: s.commands("CS-0002"))
                    rows += await writes.run(lambda s: s.commands("CS-0003"))
                    return len(rows) == 2

                async def sampled() -> bool:
                    rows = await writes.run(lambda s: s.samples("CS-0003", "tx-1"))
                    return len(rows) == 5

                async def closed() -> bool:
                    row = await writes.run(lambda s: s.session_row("CS-0003", "tx-1"))
                    return row is not None and row["active"] is False

                await wait_for(logged, "command log")
                await wait_for(sampled, "samples")
                await wait_for(closed, "transaction end")
            writer.stop()
        gone = await writes.run(lambda s: s.commands("CS-0002"))
        stayed = await writes.run(lambda s: s.commands("CS-0003"))
        assert gone[0]["error"].startswith("OcppConnectionClosed")
        assert gone[0]["status"] is None
        assert (stayed[0]["status"], stayed[0]["error"]) == ("Accepted", None)
        assert writer.failed_writes == 0
    finally:
        await writes.close()
