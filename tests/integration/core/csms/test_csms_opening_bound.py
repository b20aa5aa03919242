"""The opening-phase bound (``[csms] max_opening_connections``) against a burst of real TLS
station connections: beyond the bound they are closed at accept, before any TLS byte; the
admitted ones boot, the refused ones get back in on retry, and a bystander's Heartbeats are
answered all along."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.core.csms.conftest import (
    PASSWORD,
    CsmsUnderTest,
    RawStation,
    boot_payload,
)
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.fleet import FleetState, StationEntry, hash_password

pytestmark = pytest.mark.integration
LIMIT = 5
BURST = [f"BURST-{i:02d}" for i in range(40)]
BYSTANDER = "BURST-BYSTANDER"
#: Slowest bystander Heartbeat round trip allowed while 40 TLS handshakes run on both ends.
HEARTBEAT_BOUND_S = 3.0


def _headers(identity: str) -> dict[str, str]:
    token = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _open(csms: CsmsUnderTest, identity: str, sock: socket.socket | None) -> RawStation:
    """A TLS websocket login as ``identity`` (over ``sock`` if given, already connected)."""
    target: dict[str, Any] = (
        {"sock": sock, "server_hostname": "localhost"} if sock is not None else {}
    )
    ws: ClientConnection = await connect(
        f"{csms.url}/{identity}",
        ssl=csms.ssl_for(None),
        additional_headers=_headers(identity),
        subprotocols=["ocpp2.1"],  # type: ignore[list-item]
        compression=None,
        open_timeout=10,
        ping_interval=None,
        **target,
    )
    return RawStation(ws)


async def _get_back_in(csms: CsmsUnderTest, identity: str) -> RawStation:
    """Retry as a gateway does after a refusal at accept (a short backoff here)."""
    async with asyncio.timeout(30):
        while True:
            try:
                return await _open(csms, identity, None)
            except OSError:
                await asyncio.sleep(0.05)


async def _heartbeats(station: RawStation, round_trips: list[float]) -> None:
    while True:
        started = time.monotonic()
        answer = await station.call("Heartbeat", {}, timeout_s=HEARTBEAT_BOUND_S)
        assert answer[0] == 3
        round_trips.append(time.monotonic() - started)
        await asyncio.sleep(0.05)


async def test_a_burst_beyond_the_bound_is_refused_at_accept_and_gets_back_in(
    csms_config: Callable[..., CsmsConfig], pki: Any
) -> None:
    hashed = hash_password(PASSWORD)
    fleet = FleetState()
    fleet.set_entries(StationEntry(i, 2, True, "s", "r", hashed) for i in [*BURST, BYSTANDER])
    config = csms_config(max_opening_connections=LIMIT)
    async with CsmsServer(config, fleet) as server:
        csms = CsmsUnderTest(server, pki)
        bystander = await _open(csms, BYSTANDER, None)
        assert (await bystander.call("BootNotification", boot_payload()))[2]["status"] == (
            "Accepted"
        )
        round_trips: list[float] = []
        beats = asyncio.create_task(_heartbeats(bystander, round_trips))
        # All connected (TCP) before the server's loop runs: one accept round takes them all.
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in BURST]
        first = await asyncio.gather(
            *(_open(csms, i, s) for i, s in zip(BURST, sockets, strict=True)),
            return_exceptions=True,
        )
        admitted = {i: r for i, r in zip(BURST, first, strict=True) if isinstance(r, RawStation)}
        refused = [i for i, r in zip(BURST, first, strict=True) if isinstance(r, OSError)]
        assert len(admitted) == LIMIT, first
        assert len(refused) == len(BURST) - LIMIT, first
        refusals = server.metrics.registry.get_sample_value("vpp_csms_opening_refusals_total")
        assert refusals == len(refused)
        # Closed before TLS: none of them reached the handshake decision.
        assert server.metrics.registry.get_sample_value("vpp_csms_connects_total") == 1 + LIMIT
        again = await asyncio.gather(*(_get_back_in(csms, i) for i in refused))
        admitted |= dict(zip(refused, again, strict=True))
        boots = await asyncio.gather(
            *(s.call("BootNotification", boot_payload()) for s in admitted.values())
        )
        assert all(boot[2]["status"] == "Accepted" for boot in boots)
        assert set(server.connections) == {*BURST, BYSTANDER}
        beats.cancel()
        with pytest.raises(asyncio.CancelledError):
            await beats
        assert round_trips, "the bystander was answered during the burst"
        assert max(round_trips) < HEARTBEAT_BOUND_S
        for station in [*admitted.values(), bystander]:
            await station.ws.close()
        assert server.opening.opening == 0
