"""The per-connection token bucket: burst, then the sustained rate; closed -> backlog dropped."""

from __future__ import annotations

import pytest
from websockets.protocol import State

from vpp_core.csms.connection import ThrottledConnection


class _Ws:
    subprotocol = "ocpp2.1"

    def __init__(self) -> None:
        self.state = State.OPEN
        self.sent: list[str] = []

    async def recv(self) -> str:
        return "frame"

    async def send(self, message: str) -> None:
        self.sent.append(message)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_burst_then_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr("vpp_core.csms.connection.asyncio.sleep", fake_sleep)
    frames: list[int] = []
    conn = ThrottledConnection(
        _Ws(), rate_per_s=10.0, burst=3, on_frame=lambda: frames.append(1), clock=clock
    )
    for _ in range(3):
        assert await conn.recv() == "frame"
    assert slept == []
    await conn.recv()
    assert slept == [pytest.approx(0.1)]
    clock.now += 1.0  # a quiet second refills up to the burst, not beyond
    for _ in range(3):
        await conn.recv()
    assert len(slept) == 1
    await conn.recv()
    assert len(slept) == 2
    assert len(frames) == 8
    assert conn.subprotocol == "ocpp2.1"


async def test_closed_connection_drops_buffered_frames() -> None:
    ws = _Ws()
    conn = ThrottledConnection(ws, rate_per_s=10.0, burst=3)
    ws.state = State.CLOSED
    with pytest.raises(EOFError):
        await conn.recv()
