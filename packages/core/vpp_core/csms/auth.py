"""Who may open a websocket: the handshake check (websockets ``process_request``).

* unknown identity, disabled station, profile not allowed on this listener -> 403;
* security profile 3: TLS with a verified client certificate whose CN equals the URL
  identity, else 403 (a certificate for another station is impersonation); a revoked or
  superseded certificate is refused too (403, :mod:`vpp_core.csms.certificates`);
* security profiles 1/2: Basic auth whose user is the identity and whose password matches
  the stored hash, else 401 (profile 2 also needs TLS, else 403); the check itself, its
  cache, the rehash of old rows and the 503 + ``Retry-After`` of a saturated queue are
  :mod:`vpp_core.csms.admission`'s.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from v2g_common.pki import peer_common_name
from vpp_core.csms.admission import PasswordLogins
from vpp_core.csms.certificates import PeerCertificate, StationCertificates
from vpp_core.fleet.model import StationEntry

__all__ = ["Admission", "HandshakeAuthority", "identity_from_path"]

log = logging.getLogger(__name__)


def identity_from_path(path: str) -> str | None:
    """The station identity: the last path segment, URL-decoded (``None`` if empty/bad)."""
    segment = unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    if not segment or len(segment) > 48 or ":" in segment or "/" in segment:
        return None
    if not segment.isprintable():
        return None
    return segment


@dataclass(frozen=True, slots=True)
class Admission:
    """Why a handshake was refused (``status``) or admitted (``status`` None)."""

    identity: str | None
    status: HTTPStatus | None
    reason: str
    retry_after_s: int | None = None  # with 503: when to come back


class HandshakeAuthority:
    """Decides each handshake against the in-memory registry (``entries``)."""

    def __init__(
        self,
        *,
        allow_security_profile_1: bool,
        passwords: PasswordLogins | None = None,
        on_refusal: Callable[[HTTPStatus], None] | None = None,
        certificates: StationCertificates | None = None,
    ) -> None:
        self.entries: dict[str, StationEntry] = {}
        self._certificates = certificates
        self._allow_sp1 = allow_security_profile_1
        self._passwords = passwords or PasswordLogins()
        self._on_refusal = on_refusal

    def close(self) -> None:
        self._passwords.close()

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """websockets hook: ``None`` admits, a ``Response`` refuses the handshake."""
        admission = await self.admit(request.path, request.headers.get("Authorization"), connection)
        if admission.status is None:
            return None
        if self._on_refusal is not None:
            self._on_refusal(admission.status)
        log.warning("refused %s: %s (%d)", admission.identity, admission.reason, admission.status)
        response = connection.respond(admission.status, f"{admission.reason}\n")
        if admission.status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        if admission.retry_after_s is not None:
            response.headers["Retry-After"] = str(admission.retry_after_s)
        return response

    async def admit(self, path: str, authorization: str | None, connection: Any) -> Admission:
        identity = identity_from_path(path)
        if identity is None:
            return Admission(None, HTTPStatus.NOT_FOUND, "no station identity in the URL")
        entry = self.entries.get(identity)
        if entry is None:
            return Admission(identity, HTTPStatus.FORBIDDEN, "unknown station")
        if not entry.enabled:
            return Admission(identity, HTTPStatus.FORBIDDEN, "station disabled")
        tls = connection.transport.get_extra_info("ssl_object")
        if entry.security_profile == 3:
            return self._admit_certificate(identity, tls)
        if entry.security_profile == 2 and tls is None:
            return Admission(identity, HTTPStatus.FORBIDDEN, "security profile 2 needs TLS")
        if entry.security_profile == 1 and not self._allow_sp1:
            return Admission(identity, HTTPStatus.FORBIDDEN, "security profile 1 not allowed")
        return await self._admit_password(entry, authorization)

    def _admit_certificate(self, identity: str, tls: Any) -> Admission:
        peercert = tls.getpeercert() if tls is not None else None
        cn = peer_common_name(peercert)
        if cn is None:
            return Admission(identity, HTTPStatus.FORBIDDEN, "client certificate required")
        if cn != identity:
            return Admission(identity, HTTPStatus.FORBIDDEN, f"certificate is for {cn!r}")
        peer = PeerCertificate.from_peercert(peercert)
        if self._certificates is not None and peer is not None:
            refusal = self._certificates.refusal(identity, peer)
            if refusal is not None:
                return Admission(identity, HTTPStatus.FORBIDDEN, refusal)
        return Admission(identity, None, "client certificate")

    async def _admit_password(self, entry: StationEntry, authorization: str | None) -> Admission:
        identity = entry.station_id
        credentials = _basic_credentials(authorization)
        if credentials is None or credentials[0] != identity or entry.password_hash is None:
            return Admission(identity, HTTPStatus.UNAUTHORIZED, "Basic auth required")
        checked = await self._passwords.check(entry, credentials[1])
        if checked.rehashed is not None and self.entries.get(identity) is entry:
            self.entries[identity] = checked.rehashed
        return Admission(identity, checked.status, checked.reason, checked.retry_after_s)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, sep, password = (
            base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
