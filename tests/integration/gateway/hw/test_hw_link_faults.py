"""Serial faults over real ttys: each yields a typed error after a bounded retry, never a hang,
and the driver recovers (including when the tty itself disappears and comes back)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from v2g_gateway.hw.errors import (
    FramingError,
    LinkDownError,
    NoResponseError,
    ResponseTimeoutError,
)
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime
from v2g_sim.serial_link import LinkFaults

pytestmark = pytest.mark.integration

BAUD = 115200
#: timeout_s 0.15, 1 retry: a failing call must end well within this.
BOUND_S = 2 * (1.5 * 0.15 + 0.05) + 0.5


async def _timed(coro: Any) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coro
    return loop.time() - start


async def test_serial_timeout_is_typed_retried_and_bounded(
    sim_line: SimulatorRuntime, connect: Any
) -> None:
    module = connect(sim_line.port)
    await module.discover()
    sim_line.chargers[1].model.step(1.0)
    sim_line.chargers[1].model.inject_fault("comms_timeout")  # module stops answering
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(NoResponseError, match="no response"):
        await module.read_measurement()
    assert loop.time() - start < BOUND_S
    assert module._link.retries_used == 1
    with pytest.raises(NoResponseError):
        await module.write_setpoint(0.0)
    assert sim_line.chargers[1].model.last_setpoint_write_s == 0.0  # a dead module acts on nothing
    sim_line.chargers[1].model.clear_fault("comms_timeout")
    assert (await module.read_measurement()).ev_connected


async def test_crc_error_is_a_framing_error_then_recovers(
    sim_line: SimulatorRuntime, connect: Any
) -> None:
    module = connect(sim_line.port)
    await module.discover()
    assert sim_line.link is not None
    sim_line.link.set_faults(LinkFaults(corrupt_rate=1.0, direction="a_to_b"))  # responses
    with pytest.raises(FramingError, match="CRC"):
        await module.read_measurement()
    assert sim_line.link.chunks_corrupted >= 2  # first try and the retry
    sim_line.link.set_faults(LinkFaults())
    assert (await module.read_measurement()).faults == frozenset()


async def test_one_corrupted_answer_is_absorbed_by_the_retry(
    sim_line: SimulatorRuntime, connect: Any
) -> None:
    module = connect(sim_line.port, retries=3)
    await module.discover()
    assert sim_line.link is not None
    sim_line.link.set_faults(LinkFaults(corrupt_rate=0.3, direction="a_to_b"))
    for _ in range(10):
        await module.read_ratings()  # two chunks of corruption in a row are unlikely (seeded)
    assert module._link.retries_used >= 1


async def test_wrong_device_id_is_no_response(sim_line: SimulatorRuntime, connect: Any) -> None:
    module = connect(sim_line.port, device_id=7)
    elapsed = 0.0
    with pytest.raises(NoResponseError, match="device id 7"):
        elapsed = await _timed(module.discover())
    assert elapsed < BOUND_S


async def test_pulled_cable_then_plugged_back(
    sim_line: SimulatorRuntime, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="v2g_gateway.hw.power_module.transport")
    module = connect(sim_line.port)
    await module.discover()
    assert sim_line.link is not None
    with sim_line.link.disconnected():
        for _ in range(3):
            with pytest.raises(ResponseTimeoutError):
                await module.read_measurement()
    assert (await module.read_measurement()).ev_connected
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("transport")]
    assert sum("failing" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1


async def test_driver_reconnects_when_the_tty_comes_back(tmp_path: Path, connect: Any) -> None:
    """The config names a stable path (like /dev/serial/by-id/...): the device vanishes and
    reappears behind it."""
    stable = tmp_path / "ttyRS485"
    options = SimulatorOptions(baudrate=BAUD, time_scale=0.0, plug_in=True)
    first = SimulatorRuntime(options)
    await first.__aenter__()
    os.symlink(first.port, stable)
    module = connect(str(stable))
    await module.discover()
    await module.read_measurement()
    await first.__aexit__(None, None, None)  # adapter unplugged: the tty is gone
    with pytest.raises((LinkDownError, ResponseTimeoutError)):
        await module.read_measurement()
    with pytest.raises(LinkDownError):
        await module.read_measurement()
    async with SimulatorRuntime(options) as second:
        stable.unlink()
        os.symlink(second.port, stable)
        async with asyncio.timeout(10.0):
            while True:
                try:
                    measured = await module.read_measurement()
                    break
                except (LinkDownError, ResponseTimeoutError):
                    await asyncio.sleep(0.05)
        assert measured.ev_connected


async def test_late_answer_is_not_taken_for_the_next_request(
    sim_line: SimulatorRuntime, connect: Any
) -> None:
    """RTU has no transaction id: an answer delayed past the timeout must not be returned as
    the answer to the next (different) request of the same size."""
    module = connect(sim_line.port, retries=0)
    link = module._link
    assert sim_line.link is not None
    sim_line.link.set_faults(LinkFaults(delay_s=0.25, direction="a_to_b"))  # answers late
    with pytest.raises(ResponseTimeoutError):
        await link.read(40000, 2)  # "SunS" marker, answered after the timeout
    sim_line.link.set_faults(LinkFaults())
    assert await link.read(40002, 2) == [1, 66]  # model 1 header, not the stale marker
