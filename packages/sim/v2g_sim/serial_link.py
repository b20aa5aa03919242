"""A null-modem cable between two tty devices made of two pty pairs, with fault injection.

Each side gets a real tty path (``port_a``, ``port_b``); a thread copies bytes between the
two master ends. Tests can drop or corrupt chunks (seeded RNG), add delay, restrict faults to
one direction, or "pull the cable" (everything dropped while disconnected).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

__all__ = ["LinkFaults", "NullModem"]

Direction = Literal["both", "a_to_b", "b_to_a"]


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Per-chunk fault probabilities (a chunk is what one read of a master returned)."""

    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    delay_s: float = 0.0
    direction: Direction = "both"


class NullModem:
    """Two tty paths talking like a null-modem cable. Use as a context manager."""

    def __init__(self, *, seed: int = 0, faults: LinkFaults | None = None) -> None:
        self._rng = random.Random(seed)
        self._faults = faults or LinkFaults()
        self._lock = threading.Lock()
        self._connected = True
        self._stop_r, self._stop_w = os.pipe()
        self._master_a, self._slave_a = os.openpty()
        self._master_b, self._slave_b = os.openpty()
        for fd in (self._slave_a, self._slave_b):
            tty.setraw(fd)
        self.port_a = os.ttyname(self._slave_a)
        self.port_b = os.ttyname(self._slave_b)
        self.bytes_forwarded = 0
        self.chunks_dropped = 0
        self.chunks_corrupted = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="null-modem", daemon=True)
        self._thread.start()

    def __enter__(self) -> NullModem:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- fault control --------------------------------------------------------------------
    def set_faults(self, faults: LinkFaults) -> None:
        with self._lock:
            self._faults = faults

    def pause(self) -> None:
        """Pull the cable: bytes in either direction are lost until :meth:`resume`."""
        with self._lock:
            self._connected = False

    def resume(self) -> None:
        with self._lock:
            self._connected = True

    @contextlib.contextmanager
    def disconnected(self) -> Iterator[None]:
        """The cable is pulled for the duration of the ``with`` block."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    # --- bridge ---------------------------------------------------------------------------
    def _run(self) -> None:
        peers = {
            self._master_a: (self._master_b, "a_to_b"),
            self._master_b: (self._master_a, "b_to_a"),
        }
        while True:
            ready, _, _ = select.select([self._stop_r, *peers], [], [], 0.5)
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue  # no slave opened yet, or it just closed
                target, direction = peers[fd]
                self._forward(target, direction, data)

    def _forward(self, target: int, direction: str, data: bytes) -> None:
        with self._lock:
            faults, connected = self._faults, self._connected
        applies = faults.direction in ("both", direction)
        if not connected or (applies and self._rng.random() < faults.drop_rate):
            self.chunks_dropped += 1
            return
        if applies and data and self._rng.random() < faults.corrupt_rate:
            buf = bytearray(data)
            buf[self._rng.randrange(len(buf))] ^= 1 << self._rng.randrange(8)
            data = bytes(buf)
            self.chunks_corrupted += 1
        if applies and faults.delay_s > 0:
            time.sleep(faults.delay_s)
        with contextlib.suppress(OSError):
            os.write(target, data)
            self.bytes_forwarded += len(data)

    def close(self) -> None:
        """Stop the bridge and close both pty pairs (the tty paths disappear). Idempotent."""
        if self._closed:
            return
        self._closed = True
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (
            self._master_a,
            self._slave_a,
            self._master_b,
            self._slave_b,
            self._stop_r,
            self._stop_w,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)
