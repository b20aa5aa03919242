"""A bound on station connections in their opening phase: accepted, TLS handshake, HTTP
upgrade, until the handshake is decided (admitted or refused).

After a core restart every station reconnects at once. Unbounded, the core accepts them
all and interleaves thousands of TLS handshakes on one event loop: each takes as long as all
of them together, the stations' open timeout (10 s on our gateways) runs out, they hang up,
and the work done for them is lost (docs/admission.md: CPU per admission 1.1 -> 5.8 ms).
With at most ``limit`` connections opening, each opening is over in ``limit`` x ~1 ms and
the rest is refused **at accept**: the new socket is closed at once, before any TLS byte,
for the cost of an ``accept`` and a ``close`` (the station's TLS read fails, it retries after
its backoff). A connection whose handshake never gets decided (the peer hung up mid-TLS)
frees its place after ``expire_after_s``, the listener's own open timeout, which has closed
it by then.

:class:`OpeningGate` is the bookkeeping (no I/O, injected clock); :func:`gated_listener` is
the listening socket that consults it, handed to any asyncio server as ``sock=`` (the
server's protocol never sees a refused connection). The server tells the gate when a
handshake is decided (:meth:`OpeningGate.decided`, keyed by the peer address).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["GatedListener", "OpeningGate", "gated_listener"]

log = logging.getLogger(__name__)


class OpeningGate:
    """Counts connections in their opening phase; says whether one more may open.

    A storm (the first refusal until the count is below half the limit again) is logged
    twice: when it starts and, with how many were refused, when it ends.
    """

    def __init__(
        self,
        *,
        limit: int,
        expire_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._expire_after_s = expire_after_s
        self._clock = clock
        self._on_refused = on_refused
        self._opening: OrderedDict[Any, float] = OrderedDict()  # peer -> accepted at
        self._storm_refused = 0
        self._storm_started = 0.0

    @property
    def opening(self) -> int:
        """Connections accepted whose handshake is not decided yet (expired ones dropped)."""
        self._expire(self._clock())
        return len(self._opening)

    def try_open(self, peer: Any) -> bool:
        """At accept: ``True`` takes a place for ``peer``; ``False``: refuse it now."""
        now = self._clock()
        self._expire(now)
        if len(self._opening) >= self.limit:
            self._refused(now)
            return False
        if self._storm_refused and len(self._opening) < self.limit // 2:
            self._storm_over(now)
        self._opening[peer] = now
        return True

    def decided(self, peer: Any) -> None:
        """The handshake of ``peer`` is decided: its place is free."""
        self._opening.pop(peer, None)

    def _expire(self, now: float) -> None:
        deadline = now - self._expire_after_s
        opening = self._opening
        while opening:
            peer, accepted_at = next(iter(opening.items()))
            if accepted_at > deadline:
                return
            del opening[peer]

    def _refused(self, now: float) -> None:
        if self._on_refused is not None:
            self._on_refused()
        if not self._storm_refused:
            self._storm_started = now
            log.warning(
                "%d station connections opening: refusing new ones at accept until fewer"
                " are ([csms] max_opening_connections)",
                self.limit,
            )
        self._storm_refused += 1

    def _storm_over(self, now: float) -> None:
        log.warning(
            "accepting station connections again: %d refused at accept in %.1f s",
            self._storm_refused,
            now - self._storm_started,
        )
        self._storm_refused = 0


class GatedListener(socket.socket):
    """A listening socket whose ``accept`` closes, at once, connections the gate refuses."""

    gate: OpeningGate

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # BlockingIOError from an empty accept queue ends the server's loop
            conn, peer = super().accept()
            if self.gate.try_open(peer):
                return conn, peer
            conn.close()  # the unread ClientHello makes this a RST: the peer knows at once


def gated_listener(host: str, port: int, *, backlog: int, gate: OpeningGate) -> GatedListener:
    """A bound, listening TCP socket on ``host``:``port`` (first address ``host`` resolves
    to) that refuses connections beyond ``gate``'s limit."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = GatedListener(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    listener.gate = gate
    return listener
