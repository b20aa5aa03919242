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


class TlsUnavailableError(Exception):
    """TLS is enforced but the SECC's certificates do not load."""


class _WatchedHandshake(ssl.SSLObject):
    """The TLS object asyncio drives (``SSLContext.sslobject_class``): logs a handshake the
    EV or we refuse, once per connection."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            log.warning(
                "TLS handshake with the EV failed: %s (an EV that does not trust this "
                "charger's V2G root, or no common cipher); no session",
                exc.reason or exc,
            )
            raise


def watch_tls(*, enforce: bool, pki_dir: Path | None) -> None:
    """Make every server context the library creates log failed handshakes; when ``enforce``,
    raise :class:`TlsUnavailableError` unless the SECC's certificates load now."""
    from iso15118.secc.transport import tcp_server
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings()
    library_context = tcp_server.get_ssl_context

    def watched_context(server_side: bool) -> Any:
        context = library_context(server_side)
        if context is not None:
            context.sslobject_class = _WatchedHandshake
        return context

    if enforce and library_context(True) is None:
        raise TlsUnavailableError(
            f"TLS is enforced but the SECC's certificates under {pki_dir} do not load "
            "(issue them with provision-pki iso15118; [ev_link.iso15118] pki_dir)"
        )
    tcp_server.get_ssl_context = watched_context
