"""The CSMS's TLS connections read into 16 KiB buffers (not asyncio's 256 KiB): frames up to
the largest allowed still arrive whole, both ways."""

from __future__ import annotations

import os
from asyncio import sslproto
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.conftest import TestPki
from v2g_common.pki import client_context
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.server import tls_context
from vpp_core.csms.tls_buffers import TLS_READ_BUFFER_BYTES

pytestmark = pytest.mark.integration


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
