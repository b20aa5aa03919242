"""The test harness's recording transport (tests/doubles/oca_schemas.py) really catches frames
that break the OCA schemas, in both directions: the foreign-implementation tests rely on it."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from tests.doubles.oca_schemas import ValidatingConnection


class ScriptedSocket:
    subprotocol = "ocpp2.1"

    def __init__(self, incoming: list[Any]) -> None:
        self.incoming = deque(json.dumps(m) for m in incoming)
        self.sent: list[str] = []

    async def recv(self) -> str:
        return self.incoming.popleft()

    async def send(self, text: str) -> None:
        self.sent.append(text)


async def test_valid_exchanges_pass_and_broken_ones_are_named() -> None:
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    ws = ScriptedSocket(
        [
            [3, "a", {"currentTime": "2026-01-01T00:00:00Z", "interval": 30, "status": "Accepted"}],
            [2, "b", "Heartbeat", {"unexpected": 1}],
            [3, "nobody-asked", {}],
            [3, "c", {"status": "Maybe"}],
        ]
    )
    conn = ValidatingConnection(ws)
    await conn.send(json.dumps([2, "a", "BootNotification", boot]))
    await conn.recv()
    assert conn.violations == []
    await conn.recv()  # a CALL with a key its schema does not allow
    await conn.recv()  # an answer to no CALL
    await conn.send(json.dumps([2, "c", "ClearChargingProfile", {}]))
    await conn.recv()  # a status outside its enum
    await conn.send(json.dumps([2, "d", "BootNotification", {"reason": "PowerUp"}]))
    assert len(conn.violations) == 4, conn.violations
    assert "unexpected" in conn.violations[0]
    assert "answer to no CALL" in conn.violations[1]
    assert "Maybe" in conn.violations[2]
    assert "chargingStation" in conn.violations[3]
    assert conn.calls("Heartbeat") == [{"unexpected": 1}]
