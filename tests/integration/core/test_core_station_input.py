"""One frame from a station must not stop ``vpp-core`` (issue 13 item 1), against the real
process: on main a ``StatusNotification`` with ``evseId`` = 2^63 was answered normally and
~0.5 s later the write-behind's ``OverflowError`` ended the process (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.conftest import TestPki
from tests.doubles.waiting import eventually_async
from tests.integration.core.csms.conftest import tx_payload
from tests.support.core_process import CoreProcess, StationAccount
from v2g_common.pki import client_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
HUGE = 2**63
NOW = "2026-03-01T12:00:00Z"


def bad_frames() -> list[tuple[str, dict[str, Any], str]]:
    status = {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": HUGE, "connectorId": 1}
    seq = tx_payload("Started", HUGE, NOW, tx="tx-bad")
    evse = tx_payload("Started", 1, NOW, tx="tx-bad")
    evse["evse"]["id"] = HUGE
    return [
        ("StatusNotification", status, "payload.evseId"),
        ("TransactionEvent", seq, "payload.seqNo"),
        ("TransactionEvent", evse, "payload.evse.id"),
    ]


async def test_out_of_range_integers_get_a_callerror_and_the_core_keeps_serving(
    tmp_path: Path, pki: TestPki
) -> None:
    cert, key = pki.client("CS-0002")
    ssl = client_context(pki.ca, cert=cert, key=key)
    stations = [StationAccount("CS-0002", 3)]
    async with CoreProcess(tmp_path / "core", pki.layout, stations=stations) as core:
        async with connect(
            f"{core.csms_url}/CS-0002",
            ssl=ssl,
            subprotocols=["ocpp2.1"],  # type: ignore[list-item]
        ) as ws:
            for n, (action, payload, path) in enumerate(bad_frames()):
                await ws.send(json.dumps([2, f"bad-{n}", action, payload]))
                answer = json.loads(await ws.recv())
                assert answer[:3] == [4, f"bad-{n}", "TypeConstraintViolation"], answer
                assert answer[4]["path"] == path
            # the same connection goes on, and what it reports reaches the database
            await ws.send(
                json.dumps([2, "ok-1", "TransactionEvent", tx_payload("Started", 0, NOW)])
            )
            assert json.loads(await ws.recv())[:2] == [3, "ok-1"]

            async def recorded() -> bool:
                return await core.table_count("session_samples") == 1

            await eventually_async(recorded, timeout_s=10)
            assert core.returncode is None
        assert await core.stop() == 0  # an orderly exit, not the crash's 1
    assert "Traceback" not in core.log_text()
