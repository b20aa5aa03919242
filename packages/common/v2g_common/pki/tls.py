"""ssl.SSLContext builders for the roles in this system (TLS 1.2 minimum)."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["client_context", "peer_common_name", "server_context"]


def server_context(
    cert: Path, key: Path, *, client_ca: Path | None = None, require_client_cert: bool = False
) -> ssl.SSLContext:
    """A server context; with ``client_ca`` it verifies client certificates (security
    profile 3), requiring one when ``require_client_cert``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca: Path, *, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A client context trusting ``ca``; with ``cert``/``key`` it presents a client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca)
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def peer_common_name(peercert: dict[str, object] | None) -> str | None:
    """The CN of a verified peer certificate as returned by ``SSLSocket.getpeercert()``."""
    if not peercert:
        return None
    subject = peercert.get("subject", ())
    for rdn in subject if isinstance(subject, tuple) else ():
        for attr, value in rdn:
            if attr == "commonName":
                return str(value)
    return None
