"""Hostile and broken input on real websockets: invalid payloads, garbage, oversized frames,
a flooding station — each answered or closed without affecting other stations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.core.csms.conftest import (
    PASSWORD,
    STATIONS,
    CsmsUnderTest,
    boot_payload,
    tx_payload,
)
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.fleet import FleetState

pytestmark = pytest.mark.integration
TS = "2026-03-01T12:00:00Z"


async def test_schema_invalid_payloads_get_callerror_and_connection_stays(
    csms: CsmsUnderTest,
) -> None:
    async with csms.station("CS-0001", password=PASSWORD) as station:
        extra_key = {**boot_payload(), "colour": "red"}  # additionalProperties: false
        reply = await station.call("BootNotification", extra_key)
        assert reply[0] == 4
        assert reply[1] == "m1"
        assert reply[2] == "FormatViolation"
        wrong_type = tx_payload("Started", "zero", TS)  # type: ignore[arg-type]
        reply = await station.call("TransactionEvent", wrong_type)
        assert reply[0] == 4
        assert reply[2] == "TypeConstraintViolation"
        missing = {"chargingStation": {"model": "M", "vendorName": "V"}}
        reply = await station.call("BootNotification", missing)
        assert reply[0] == 4
        assert reply[2] == "OccurrenceConstraintViolation"
        reply = await station.call("FlyToTheMoon", {})
        assert reply[0] == 4
        assert reply[2] == "NotImplemented"
        reply = await station.call("Heartbeat", {})
        assert reply[0] == 3
        assert "currentTime" in reply[2]
    assert not csms.server.fleet.sessions()  # the invalid TransactionEvent changed nothing


async def test_unreadable_meter_timestamp_is_a_callerror(csms: CsmsUnderTest) -> None:
    async with csms.station("CS-0001", password=PASSWORD) as station:
        payload = tx_payload("Started", 0, TS)
        payload["meterValue"][0]["timestamp"] = "2026-03-01T12:00:00"  # no offset
        reply = await station.call("TransactionEvent", payload)
        assert reply[0] == 4
        assert reply[2] in ("FormatViolation", "PropertyConstraintViolation")
    assert not csms.server.fleet.sessions()


@pytest.mark.parametrize(
    "garbage",
    [
        "not json at all",
        "[]",
        '{"a": 1}',
        "[2]",
        '[7, "x", "Heartbeat", {}]',
        b"\x00\xff\xfe",
        '[2, 5, "Heartbeat", {}]',
    ],
)
async def test_garbage_frames_answered_and_connection_kept(
    csms: CsmsUnderTest, garbage: str | bytes
) -> None:
    async with csms.station("CS-0001", password=PASSWORD) as station:
        await station.ws.send(garbage)
        frame = json.loads(await asyncio.wait_for(station.ws.recv(), 5))
        assert frame[0] == 4
        assert frame[2] in (
            "RpcFrameworkError",
            "MessageTypeNotSupported",
            "ProtocolError",
            "FormatViolation",
        )
        reply = await station.call("Heartbeat", {})
        assert reply[0] == 3


async def test_oversized_frame_closes_only_that_connection(
    csms_config: Callable[..., CsmsConfig], pki: object
) -> None:
    fleet = FleetState()
    fleet.set_entries(STATIONS)
    async with CsmsServer(csms_config(max_frame_bytes=8192), fleet) as server:
        under_test = CsmsUnderTest(server, pki)
        async with (
            under_test.station("CS-0001", password=PASSWORD) as big,
            under_test.station("CS-0002", cert_identity="CS-0002") as other,
        ):
            huge = tx_payload("Started", 0, TS)
            huge["transactionInfo"]["transactionId"] = "x" * 20_000
            await big.ws.send(json.dumps([2, "big", "TransactionEvent", huge]))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(big.ws.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
            assert (await other.call("Heartbeat", {}))[0] == 3
            async with under_test.station("CS-0001", password=PASSWORD) as again:
                assert (await again.call("Heartbeat", {}))[0] == 3
        assert not fleet.sessions()


async def test_flooding_station_does_not_starve_others(
    csms_config: Callable[..., CsmsConfig], pki: object
) -> None:
    fleet = FleetState()
    fleet.set_entries(STATIONS)
    config = csms_config(max_messages_per_s=100, message_burst=50)
    async with CsmsServer(config, fleet) as server:
        under_test = CsmsUnderTest(server, pki)
        async with (
            under_test.station("CS-0001", password=PASSWORD) as flooder,
            under_test.station("CS-0002", cert_identity="CS-0002") as a,
            under_test.station("CS-0003", cert_identity="CS-0003") as b,
        ):
            frame = json.dumps(
                [2, "f", "TransactionEvent", tx_payload("Updated", 1, TS, tx="flood")]
            )

            sent = 0

            async def flood() -> None:
                nonlocal sent
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.5):
                        while True:  # never reads its answers: slow *and* loud
                            await flooder.ws.send(frame)  # blocks once TCP pushes back
                            sent += 1
                            if sent % 100 == 0:
                                await asyncio.sleep(0)

            async def polite(station: object, tx: str) -> list[float]:
                waits = []
                for i in range(15):
                    t0 = time.monotonic()
                    reply = await station.call(  # type: ignore[attr-defined]
                        "TransactionEvent", tx_payload("Updated", i, TS, tx=tx), timeout_s=2.0
                    )
                    assert reply[0] == 3
                    waits.append(time.monotonic() - t0)
                    await asyncio.sleep(0.05)
                return waits

            async with asyncio.TaskGroup() as tg:
                tg.create_task(flood())
                polite_a = tg.create_task(polite(a, "tx-a"))
                polite_b = tg.create_task(polite(b, "tx-b"))
            flooder.ws.transport.abort()  # its backlog would only delay the test's teardown
            handled = fleet.session("CS-0001", "flood")
            assert handled is not None
            assert sent > 500
            # the flooder was held to its budget: burst + rate * elapsed (+ queued frames)
            frames = server.metrics.registry.get_sample_value("vpp_csms_frames_received_total")
            assert frames is not None
            assert frames < 50 + 100 * 2.5 + 100
            assert max(polite_a.result() + polite_b.result()) < 2.0
            assert fleet.session("CS-0002", "tx-a") is not None
