"""The CSMS's transport: TLS connections read into 16 KiB buffers (not asyncio's 256 KiB) and
frames up to the largest allowed still arrive whole, both ways; the listen backlog is the
configured one (asyncio's default of 100 overflowed in reconnect storms)."""

from __future__ import annotations

import os
import subprocess
from asyncio import sslproto
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.conftest import TestPki
from v2g_common.pki import client_context
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.server import CsmsServer, tls_context
from vpp_core.csms.tls_buffers import TLS_READ_BUFFER_BYTES
from vpp_core.fleet import FleetState

pytestmark = pytest.mark.integration
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


@pytest.fixture
def restore_buffer() -> Iterator[None]:
    before = sslproto.SSLProtocol.max_size
    try:
        yield
    finally:
        sslproto.SSLProtocol.max_size = before


@pytest.mark.usefixtures("restore_buffer")
async def test_large_frames_cross_a_tls_connection_with_small_buffers(pki: TestPki) -> None:
    cert, key = pki.server("csms")
    context = tls_context(CsmsConfig(tls_cert_file=cert, tls_key_file=key))
    assert sslproto.SSLProtocol.max_size == TLS_READ_BUFFER_BYTES == 16 * 1024
    frame = os.urandom(120_000).hex()  # 240 kB of text: fifteen buffers' worth

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=context, max_size=2**20) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"wss://localhost:{port}/"
        async with connect(url, ssl=client_context(pki.ca), max_size=2**20) as ws:
            server_side = next(iter(server.connections))
            assert len(server_side.transport._ssl_protocol._ssl_buffer) == 16 * 1024
            for _ in range(3):
                await ws.send(frame)
                assert await ws.recv() == frame


def _listen_queue(port: int) -> int:
    """The accept queue of the socket listening on ``port`` (``ss`` shows it as Send-Q)."""
    shown = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(shown[2])


@pytest.mark.parametrize("backlog", [100, 1024])
async def test_the_listen_backlog_is_the_configured_one(
    csms_config: Callable[..., CsmsConfig], backlog: int
) -> None:
    somaxconn = int(SOMAXCONN.read_text())  # noqa: ASYNC240 (a procfs read, instant)
    async with CsmsServer(csms_config(listen_backlog=backlog), FleetState()) as server:
        assert _listen_queue(server.port) == min(backlog, somaxconn)
