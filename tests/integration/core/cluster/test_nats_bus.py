"""The NATS/JetStream adapter of the bus against a real nats-server of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.doubles.waiting import eventually, eventually_async
from tests.support.nats_server import NatsServer
from v2g_sim.broker import free_port
from vpp_core.cluster.bus import BusError, NoResponder, station_subject
from vpp_core.cluster.events import FleetEvent
from vpp_core.cluster.nats_bus import NatsBus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _event(n: int, node: str = "n1") -> FleetEvent:
    now = datetime.now(UTC).isoformat()
    kwargs = {"evse_id": 1, "meter_value": [{"timestamp": now}], "now": now}
    return FleetEvent("record_meter_values", f"CS-{n % 7}", kwargs, node, f"{node}.b.{n}")


async def _collect(bus: NatsBus, since: datetime, into: list[tuple[int, str]]) -> None:
    async for seq, event in bus.events(since=since):
        into.append((seq, event.msg_id))


@pytest.fixture
async def buses(nats_server: NatsServer) -> AsyncIterator[tuple[NatsBus, NatsBus]]:
    async with (
        NatsBus(nats_server.url, name="node-a") as node,
        NatsBus(nats_server.url, name="coord-a") as coordinator,
    ):
        yield node, coordinator


async def _wait_count(seen: list[tuple[int, str]], n: int, timeout_s: float = 20) -> None:
    await eventually(lambda: len(seen) >= n, timeout_s=timeout_s)


async def test_events_survive_a_server_restart_once_each(
    nats_server: NatsServer, buses: tuple[NatsBus, NatsBus]
) -> None:
    node, coordinator = buses
    since = datetime.now(UTC) - timedelta(seconds=5)
    for n in range(100):
        await node.publish_event(_event(n))
    await node.publish_event(_event(5))  # a retried publish: the duplicate window keeps one
    seen: list[tuple[int, str]] = []
    reader = asyncio.create_task(_collect(coordinator, since, seen))
    await _wait_count(seen, 100)
    await asyncio.to_thread(nats_server.restart, kill=True)
    published = 100
    async with asyncio.timeout(20):
        while published < 200:  # publishes fail until the client is back; retried in order
            try:
                await node.publish_event(_event(published))
            except Exception:
                await asyncio.sleep(0.1)
                continue
            published += 1
    await _wait_count(seen, 200)
    await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    reader.cancel()
    ids = [msg_id for _, msg_id in seen]
    assert ids == [f"n1.b.{n}" for n in range(200)]
    seqs = [seq for seq, _ in seen]
    assert seqs == sorted(set(seqs))


async def test_a_station_request_nobody_serves_fails_at_once(
    buses: tuple[NatsBus, NatsBus],
) -> None:
    node, coordinator = buses
    with pytest.raises(NoResponder):
        async with asyncio.timeout(2):
            await coordinator.request(station_subject("CS-9"), b"{}", timeout_s=10)

    async def echo(payload: bytes) -> bytes:
        return b"re:" + payload

    served = await node.serve(station_subject("CS-9"), echo)
    answers: list[bytes] = []

    async def answered() -> bool:  # the interest is confirmed to the node's own connection
        with contextlib.suppress(NoResponder):
            answers.append(await coordinator.request(station_subject("CS-9"), b"x", timeout_s=2))
        return bool(answers)

    await eventually_async(answered, timeout_s=2, poll_s=0.05)
    assert answers == [b"re:x"]
    await served.stop()
    with pytest.raises(NoResponder):
        await coordinator.request(station_subject("CS-9"), b"{}", timeout_s=10)


async def test_a_server_that_does_not_answer_at_start_is_named() -> None:
    with pytest.raises(BusError, match=r"cluster.nats_url nats://127.0.0.1:\d+: no NATS server"):
        async with NatsBus(f"nats://127.0.0.1:{free_port()}", name="n", start_timeout_s=1.0):
            pass
