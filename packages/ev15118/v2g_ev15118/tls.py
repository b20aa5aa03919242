"""The SECC's TLS (``--enforce-tls``, ``--pki-dir``; certificates from ``provision-pki
iso15118``): enforced TLS starts only with certificates that load, and a failed handshake is
logged.

The library would otherwise answer an EV's SDP with plain TCP when its certificates do not
load (``tcp_server.start_tls``: "Falling back to TCP connection"), and asyncio reports a
failed server-side handshake only in debug mode, so an EV that does not trust the charger's
V2G root would leave no trace in the gateway's journal.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

__all__ = ["TlsUnavailableError", "watch_tls"]

log = logging.getLogger("v2g_ev15118.secc")
#: where asyncio's TLS protocol learns that a handshake ended (a private method)
_HANDSHAKE_HOOK = "_on_handshake_complete"


class TlsUnavailableError(Exception):
    """TLS is enforced but the SECC's certificates do not load."""


def _describe(handshake_exc: BaseException | type[BaseException]) -> str:
    if handshake_exc is ConnectionResetError or isinstance(handshake_exc, ConnectionResetError):
        # what an EVCC that rejects our certificate does: it closes without an alert
        return "the EV closed the connection during the handshake"
    if isinstance(handshake_exc, ssl.SSLError):
        return str(handshake_exc.reason or handshake_exc)
    return repr(handshake_exc)


def _log_refused_handshakes() -> None:
    """asyncio reports a server-side handshake failure only in debug mode: log each one.
    ``SSLProtocol._on_handshake_complete`` is where asyncio learns of it, an alert or the
    peer's EOF alike (CPython 3.11-3.13); on a Python without it the process says so."""
    from asyncio import sslproto

    library = getattr(sslproto.SSLProtocol, _HANDSHAKE_HOOK, None)
    if library is None:
        log.warning("this Python's asyncio hides failed TLS handshakes: they are not logged")
        return

    def on_handshake_complete(protocol: Any, handshake_exc: Any) -> Any:
        if handshake_exc is not None and getattr(protocol, "_server_side", False):
            log.warning(
                "TLS handshake with the EV failed: %s (an EV that does not trust this "
                "charger's V2G root, or no common cipher); no session",
                _describe(handshake_exc),
            )
        return library(protocol, handshake_exc)

    setattr(sslproto.SSLProtocol, _HANDSHAKE_HOOK, on_handshake_complete)


def watch_tls(*, enforce: bool, pki_dir: Path | None) -> None:
    """Log every failed server-side TLS handshake; when ``enforce``, raise
    :class:`TlsUnavailableError` unless the SECC's certificates load now."""
    from iso15118.shared.security import get_ssl_context
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings()
    if enforce and get_ssl_context(True) is None:
        raise TlsUnavailableError(
            f"TLS is enforced but the SECC's certificates under {pki_dir} do not load "
            "(issue them with provision-pki iso15118; [ev_link.iso15118] pki_dir)"
        )
    _log_refused_handshakes()
