"""Websocket plumbing for OCPP-J: the station's URL, Basic auth, subprotocol negotiation."""

from __future__ import annotations

import base64
import logging
import ssl as ssl_module
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import NegotiationError
from websockets.typing import Subprotocol

from v2g_common.ocpp21.errors import InvalidIdentity, SubprotocolNotNegotiated
from v2g_common.ocpp21.schemas import SUBPROTOCOLS
from v2g_common.redaction import redact_credentials

__all__ = [
    "SUBPROTOCOLS",
    "basic_auth_header",
    "connect_to_csms",
    "select_subprotocol",
    "server_subprotocols",
    "station_url",
]

#: Longest identity OCPP allows (identifierString[48]).
MAX_IDENTITY_LENGTH = 48


def check_identity(identity: str) -> str:
    """An identity fit for the URL and the Basic-auth user name, or :class:`InvalidIdentity`."""
    if not identity or len(identity) > MAX_IDENTITY_LENGTH or ":" in identity:
        raise InvalidIdentity(
            f"station identity {identity!r}: 1..{MAX_IDENTITY_LENGTH} characters, no ':'"
        )
    return identity


def station_url(base_url: str, identity: str) -> str:
    """CSMS endpoint + ``/`` + URL-encoded identity."""
    return base_url.rstrip("/") + "/" + quote(check_identity(identity), safe="")


def basic_auth_header(identity: str, password: str) -> str:
    """``Authorization`` value of security profiles 1 and 2 (user name = identity)."""
    token = base64.b64encode(f"{check_identity(identity)}:{password}".encode()).decode("ascii")
    return "Basic " + token


def server_subprotocols(enabled: Sequence[str] = SUBPROTOCOLS) -> list[Subprotocol]:
    """``subprotocols=`` for websockets' ``serve``: ours, in order of preference."""
    unknown = [name for name in enabled if name not in SUBPROTOCOLS]
    if unknown:
        raise ValueError(f"unsupported subprotocols {unknown}; known: {SUBPROTOCOLS}")
    return [Subprotocol(name) for name in enabled]


def select_subprotocol(connection: Any, offered: Sequence[str]) -> Subprotocol:
    """``select_subprotocol=`` for websockets' ``serve``: our preferred one the station offers.

    Raises websockets' ``NegotiationError`` (HTTP 400, handshake refused) when the station
    offers none of ours: OCPP has no meaning without an agreed version.
    """
    for name in SUBPROTOCOLS:
        if name in offered:
            return Subprotocol(name)
    raise NegotiationError(
        f"no OCPP subprotocol offered (got {list(offered)}; want one of {', '.join(SUBPROTOCOLS)})"
    )


async def connect_to_csms(
    url: str,
    identity: str,
    *,
    ssl: ssl_module.SSLContext | None = None,
    password: str | None = None,
    subprotocols: Sequence[str] = ("ocpp2.1",),
    open_timeout_s: float = 10.0,
    **websocket_options: Any,
) -> ClientConnection:
    """Open the station's websocket to ``url/<identity>``.

    ``password`` adds Basic auth (profiles 1/2), ``ssl`` the TLS context (profiles 2/3, with
    the client certificate loaded for 3). ``websocket_options`` go to websockets' ``connect``
    (``max_size``, ``ping_interval``, ...). Raises :class:`SubprotocolNotNegotiated` (after
    closing) when the CSMS accepts without picking one of ``subprotocols``; websockets'
    own errors (``InvalidStatus`` for a refused handshake, ``TimeoutError``) pass through.
    """
    headers = {"Authorization": basic_auth_header(identity, password)} if password else {}
    ws_log = logging.getLogger("websockets.client")
    redact_credentials(ws_log)  # websockets logs our headers at DEBUG: not the password
    websocket_options.setdefault("logger", ws_log)
    if ssl is not None:
        websocket_options["ssl"] = ssl
    connection = await connect(
        station_url(url, identity),
        subprotocols=[Subprotocol(name) for name in subprotocols],
        additional_headers=headers,
        open_timeout=open_timeout_s,
        **websocket_options,
    )
    if connection.subprotocol not in subprotocols:
        await connection.close()
        raise SubprotocolNotNegotiated(
            f"CSMS at {url} picked {connection.subprotocol!r}, offered {list(subprotocols)}"
        )
    return connection
