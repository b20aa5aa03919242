"""The websocket transport alone: how many OCPP-sized messages per second one core can take
with ``websockets`` (what the CSMS uses) and with ``picows`` (Cython, asyncio).

A server process (pinned to CPU 0) answers each text frame with a CALLRESULT after parsing it
with orjson (``[3, id, {}]``: the transport plus the JSON, no OCPP validation and no fleet);
this process (CPU 1) runs C connections back-to-back with csms_load's raw client and the same
TransactionEvent frame. Prints one JSON document: msg/s and server CPU per message for each.

    .venv/bin/pip install 'picows==2.3.*'        # not a dependency of any distribution
    .venv/bin/python benchmarks/ws_transport.py --connections 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csms_load import RawWebSocket, _frame, _free_port, _now_text  # noqa: E402


def _answer(data: bytes | str) -> bytes:
    return orjson.dumps([3, orjson.loads(data)[1], {}])


async def _serve_websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(_answer(message).decode())

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        await asyncio.Future()


async def _serve_picows(port: int) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                transport.send(WSMsgType.TEXT, _answer(frame.get_payload_as_bytes()))
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    server = await ws_create_server(lambda _request: Echo(), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _closed_loop(port: int, connections: int, duration_s: float) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    sockets = []
    for i in range(connections):
        key = base64.b64encode(os.urandom(16)).decode()
        handshake = (
            f"GET /ocpp/T{i} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        _t, protocol = await loop.create_connection(
            lambda h=handshake: RawWebSocket(h), "127.0.0.1", port
        )
        await protocol.opened
        sockets.append(protocol)
    counted = [0]
    stop = time.monotonic() + duration_s

    async def run(ws: RawWebSocket, index: int) -> None:
        ts, n = _now_text(), 0
        while time.monotonic() < stop:
            n += 1
            await ws.exchange(_frame(n, n, f"tx-{index}", ts, 1000 + n))
            counted[0] += 1

    started = time.monotonic()
    await asyncio.gather(*(run(ws, i) for i, ws in enumerate(sockets)))
    elapsed = time.monotonic() - started
    for ws in sockets:
        if ws.transport is not None:
            ws.transport.abort()
    return counted[0], elapsed


def _measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(server.pid, {0})
    try:
        _wait_port(port, server)
        proc = psutil.Process(server.pid)
        before = proc.cpu_times()
        messages, elapsed = asyncio.run(_closed_loop(port, args.connections, args.duration))
        after = proc.cpu_times()
    finally:
        server.terminate()
        server.wait(timeout=10)
    cpu_s = (after.user + after.system) - (before.user + before.system)
    return {
        "msg_per_s": round(messages / elapsed, 1),
        "server_cpu_pct_of_one_core": round(100 * cpu_s / elapsed, 1),
        "server_cpu_us_per_msg": round(1e6 * cpu_s / max(1, messages), 1),
    }


def _wait_port(port: int, server: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(server.stderr.read().decode() if server.stderr else "exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"server on {port} did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--serve", choices=["websockets", "picows"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve = _serve_websockets if args.serve == "websockets" else _serve_picows
        asyncio.run(serve(args.port))
        return 0
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {1})
    result: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}
    for kind in ("websockets", "picows"):
        try:
            result[kind] = _measure(kind, args)
        except (RuntimeError, TimeoutError) as exc:
            result[kind] = {"error": str(exc)[-300:]}
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
