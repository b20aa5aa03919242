"""RegisterLink over a scripted client: typed errors, bounded retry, log once per episode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from v2g_gateway.hw.errors import (
    FramingError,
    IllegalAddressError,
    LinkDownError,
    ModuleRejectedError,
    NoResponseError,
    ResponseTimeoutError,
)
from v2g_gateway.hw.power_module.transport import FrameMonitor, RegisterLink


@dataclass
class _Response:
    registers: list[int] = field(default_factory=list)
    exception_code: int = 0

    def isError(self) -> bool:
        return self.exception_code != 0


class ScriptedClient:
    """Answers each request with the next scripted behaviour."""

    def __init__(self, script: list[str], *, monitor: FrameMonitor | None = None) -> None:
        self.script = list(script)
        self.monitor = monitor
        self.requests: list[tuple[int, int]] = []
        self.connected = True
        self.connect_ok = True

    async def connect(self) -> bool:
        self.connected = self.connect_ok
        return self.connect_ok

    def close(self) -> None:
        self.connected = False

    async def _answer(self, address: int, count: int) -> _Response:
        self.requests.append((address, count))
        if self.monitor:
            self.monitor(True, b"request")
        step = self.script.pop(0) if self.script else "ok"
        if step == "silence":
            await asyncio.sleep(10)  # the link's own deadline must cut this
        if step == "garbage":
            if self.monitor:
                self.monitor(False, b"\x01\x03\xff")
            raise OSError("no valid frame")
        if step == "lost":
            self.connected = False
            raise OSError("device vanished")
        if step.startswith("exc"):
            return _Response(exception_code=int(step[3:]))
        return _Response(registers=[address + i for i in range(count)])

    async def read_holding_registers(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Any:
        return await self._answer(address, count)

    async def write_registers(
        self, address: int, values: Sequence[int], *, device_id: int = 1
    ) -> Any:
        return await self._answer(address, len(values))


def _link(
    client: ScriptedClient, *, retries: int = 2, monitor: FrameMonitor | None = None
) -> RegisterLink:
    return RegisterLink(client, device_id=3, timeout_s=0.05, retries=retries, monitor=monitor)


async def test_large_read_is_split_into_modbus_sized_requests() -> None:
    client = ScriptedClient([])
    words = await _link(client).read(40000, 300)
    assert words == list(range(40000, 40300))
    assert client.requests == [(40000, 125), (40125, 125), (40250, 50)]


async def test_silence_is_retried_then_no_response_error_within_bound() -> None:
    monitor = FrameMonitor()
    client = ScriptedClient(["silence"] * 3, monitor=monitor)
    link = _link(client, monitor=monitor)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(NoResponseError, match="device id 3"):
        await link.read(40000, 2)
    assert len(client.requests) == 3  # 1 + 2 retries
    assert link.retries_used == 2
    assert loop.time() - start < 3 * (1.5 * 0.05 + 0.05) + 0.5


async def test_one_silence_then_answer_succeeds_with_a_retry() -> None:
    client = ScriptedClient(["silence", "ok"])
    link = _link(client)
    assert await link.read(10, 1) == [10]
    assert link.retries_used == 1


async def test_garbled_answer_is_a_framing_error() -> None:
    monitor = FrameMonitor()
    client = ScriptedClient(["garbage"] * 3, monitor=monitor)
    with pytest.raises(FramingError, match="CRC"):
        await _link(client, monitor=monitor).read(0, 1)


async def test_exception_responses_are_typed_and_not_retried() -> None:
    client = ScriptedClient(["exc2", "exc4"])
    with pytest.raises(IllegalAddressError) as illegal:
        await _link(client).read(0, 1)
    assert illegal.value.exception_code == 2
    with pytest.raises(ModuleRejectedError) as rejected:
        await _link(client).write(0, [1])
    assert rejected.value.exception_code == 4
    assert len(client.requests) == 2


async def test_lost_device_is_link_down_and_reconnect_is_attempted() -> None:
    client = ScriptedClient(["lost"])
    link = _link(client)
    with pytest.raises(LinkDownError):
        await link.read(0, 1)
    client.connect_ok = False
    with pytest.raises(LinkDownError, match="cannot open"):
        await link.read(0, 1)
    client.connect_ok = True
    assert await link.read(5, 1) == [5]


async def test_failure_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    client = ScriptedClient(["silence"] * 6 + ["ok", "ok"])
    link = _link(client, retries=0)
    caplog.set_level(logging.INFO, logger="v2g_gateway.hw.power_module.transport")
    for _ in range(6):
        with pytest.raises(ResponseTimeoutError):
            await link.read(0, 1)
    await link.read(0, 1)
    await link.read(0, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failing" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1
