"""The raw CSMS double itself: it must notice schema violations, or the frame-validation
tests above it prove nothing. A bare websockets client plays a broken station."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.doubles.raw_csms import RawCsms

pytestmark = pytest.mark.integration


async def test_double_flags_invalid_station_frames() -> None:
    async with (
        RawCsms() as csms,
        connect(csms.url + "/CS-X", subprotocols=[Subprotocol("ocpp2.1")]) as ws,
    ):
        await ws.send(json.dumps([2, "a", "BootNotification", {"chargingStation": {}}]))
        await ws.send(
            json.dumps(
                [
                    2,
                    "b",
                    "StatusNotification",
                    {
                        "timestamp": "2026-11-21T12:00:00",
                        "connectorStatus": "Charging",
                        "evseId": 1,
                        "connectorId": 1,
                    },
                ]
            )
        )
        await ws.send(json.dumps([2, "c", "Heartbeat", {}]))
        await csms.wait_for(lambda c: len(c.calls("Heartbeat")) == 1)
        reply_wait = asyncio.ensure_future(
            csms.call("GetCompositeSchedule", {"duration": 60, "evseId": 1})
        )
        request = json.loads(await ws.recv())
        while request[0] != 2:
            request = json.loads(await ws.recv())
        await ws.send(json.dumps([3, request[1], {"status": "Maybe"}]))
        assert (await reply_wait) == {"status": "Maybe"}
    joined = "\n".join(csms.violations)
    assert "BootNotification: chargingStation: 'model' is a required property" in joined
    assert "'Charging' is not one of" in joined
    assert "is not a 'date-time'" in joined  # the timestamp without an offset
    assert "Maybe" in joined
    assert not any(v.startswith("Heartbeat") for v in csms.violations)
