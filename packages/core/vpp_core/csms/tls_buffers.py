"""The read buffer asyncio gives each TLS connection: 16 KiB instead of 256 KiB.

``asyncio.sslproto.SSLProtocol`` allocates (and zero-fills) a ``max_size`` = 256 KiB buffer for
every TLS connection as it is accepted, before the handshake. At 10,000 stations that is
2.5 GiB of resident memory, and in a reconnect storm the zero-filling was 14 % of the core's
CPU, as much as the TLS handshakes themselves (py-spy of ``benchmarks/readmission.py
--stations 5000``; docs/admission.md). The buffer only has to hold what one ``recv`` returns:
a TLS record is at most 16 KiB + 256 bytes, an OCPP frame a few hundred bytes, and a larger
read just takes more ``recv`` calls.

asyncio builds the protocol from the module's class for every TLS server and client in the
process (there is no per-server option), so this sets the class attribute, once, at start.
"""

from __future__ import annotations

from asyncio import sslproto

__all__ = ["TLS_READ_BUFFER_BYTES", "limit_tls_read_buffer"]

TLS_READ_BUFFER_BYTES = 16 * 1024


def limit_tls_read_buffer(size_bytes: int = TLS_READ_BUFFER_BYTES) -> None:
    """Make every TLS connection asyncio creates from now on use a ``size_bytes`` buffer."""
    if not hasattr(sslproto.SSLProtocol, "max_size"):
        return  # a Python whose asyncio no longer has it: nothing to limit
    sslproto.SSLProtocol.max_size = size_bytes
