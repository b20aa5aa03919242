"""What the CSMS test doubles share: a websockets server on a free loopback port (optionally
TLS), its station URL, and the Basic-auth check of security profiles 1/2; and the
``NotImplemented`` fallback the ``ocpp`` library's ChargePoint lacks under 2.1."""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = [
    "LoopbackServer",
    "NotImplementedFallback",
    "basic_auth",
    "basic_auth_refusal",
    "peer_certificate",
]


def basic_auth(identity: str, password: str) -> str:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return f"Basic {token}"


def basic_auth_refusal(passwords: dict[str, str] | None, request: Request) -> Response | None:
    """401 unless ``request`` carries the identity's password (no check without passwords)."""
    if passwords is None:
        return None
    identity = request.path.rsplit("/", 1)[-1]
    expected = passwords.get(identity)
    if expected is None or request.headers.get("Authorization") != basic_auth(identity, expected):
        return Response(401, "Unauthorized", Headers(), b"")
    return None


def peer_certificate(connection: ServerConnection) -> dict[str, Any] | None:
    """The client certificate the TLS handshake verified (``getpeercert()``), if any."""
    tls = connection.transport.get_extra_info("ssl_object")
    cert: dict[str, Any] | None = tls.getpeercert() if tls is not None else None
    return cert or None


class LoopbackServer:
    """``async with`` serving ``_handle`` on 127.0.0.1; ``url`` is the station's endpoint."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, subprotocols: tuple[str, ...]):
        self._ssl = ssl_context
        self._subprotocols = subprotocols
        self._server: Server | None = None

    async def __aenter__(self) -> Any:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            ssl=self._ssl,
            subprotocols=list(self._subprotocols),  # type: ignore[arg-type]
            process_request=self._process_request,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"{'wss' if self._ssl else 'ws'}://localhost:{port}/ocpp"

    async def _handle(self, connection: ServerConnection) -> None:
        raise NotImplementedError

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return None


class NotImplementedFallback:
    """Mix into an ``ocpp`` ChargePoint: a CALL without a handler gets CALLERROR
    NotImplemented (``ocpp`` 2.1.0 sends nothing at all for it under 2.1)."""

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        if message[0] == 2 and message[2] not in self.route_map:  # type: ignore[attr-defined]
            reply = [4, message[1], "NotImplemented", f"no handler for {message[2]}", {}]
            await self._send(json.dumps(reply))  # type: ignore[attr-defined]
            return
        await super().route_message(raw_msg)  # type: ignore[misc]
