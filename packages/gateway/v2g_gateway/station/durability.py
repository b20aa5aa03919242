"""Making the station's state database durable off the event loop.

The station commits to SQLite on the supervisor's event loop (profiles, the TransactionEvent
outbox, device-model writes), but with ``synchronous=NORMAL`` in WAL mode those commits only
reach the page cache: no fsync on the loop. A commit used to fsync the WAL on the loop
(``synchronous=FULL``); under I/O load one fsync took seconds, the station's tick stopped for
that long and the control loop's setpoint lease ran out (``LEASE_EXPIRED``, output to 0 W).

:meth:`StateFlusher.flushed` makes every commit made before it durable: it fsyncs the WAL in
a worker thread (callers waiting at the same time share one fsync) and checkpoints the WAL
into the database file there too, once it has grown past ``checkpoint_bytes`` (the loop's
connection never checkpoints: ``wal_autocheckpoint=0``). The station awaits it before
anything leaves that depends on the write: an ``Accepted`` for a profile or a variable, a
TransactionEvent on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from v2g_gateway.station.errors import StationStateError

__all__ = ["CHECKPOINT_BYTES", "StateFlusher"]

log = logging.getLogger(__name__)

#: WAL size from which a flush also checkpoints (the WAL then starts again from the front).
CHECKPOINT_BYTES = 4 * 1024 * 1024


class StateFlusher:
    """Group-committing fsync of one SQLite database's WAL, run in its own thread."""

    def __init__(
        self,
        db_path: Path,
        *,
        fsync: Callable[[int], None] | None = None,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        self._db_path = db_path
        self._wal_path = Path(f"{db_path}-wal")
        self._fsync = fsync  # None: os.fsync
        self._checkpoint_bytes = checkpoint_bytes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="station-state-flush")
        self._checkpointer: sqlite3.Connection | None = None  # used in that thread only
        self._lock = asyncio.Lock()
        self._requested = 0  # flushed() calls so far
        self._done = 0  # of those, how many a finished fsync covers
        self.flushes = 0

    async def flushed(self) -> None:
        """Return once every commit made before this call is on disk; raise
        StationStateError when the disk refuses."""
        self._requested += 1
        wanted = self._requested
        async with self._lock:
            if self._done >= wanted:
                return  # an fsync that started after our call already covered it
            covers = self._requested
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._flush)
            self._done = covers
            self.flushes += 1

    def close(self) -> None:
        """Flush once more and stop the thread (the station is stopping); a refused last
        flush is logged, the database's own close then tries again."""
        try:
            self._thread.submit(self._flush_and_close).result()
        except StationStateError as exc:
            log.error("state database not flushed at stop: %s", exc)
        finally:
            self._thread.shutdown(wait=True)

    # --- in the worker thread ------------------------------------------------------------
    def _flush(self) -> None:
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: nothing was written since the database was opened
        except OSError as exc:
            raise StationStateError(f"cannot open {self._wal_path} to flush it: {exc}") from exc
        try:
            (self._fsync or os.fsync)(fd)
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise StationStateError(f"cannot flush {self._wal_path}: {exc}") from exc
        finally:
            os.close(fd)
        if size >= self._checkpoint_bytes:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """PASSIVE: never waits for the loop's writer; what it cannot copy now goes next time.

        Once every frame is copied, the next write starts the WAL again from the front and
        syncs its new header: a write of ours, here, so that it is not the loop's (a loop
        write landing between the two still pays that one sync)."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self._db_path, isolation_level=None)
                self._checkpointer.execute("PRAGMA synchronous=FULL")
            busy, frames, copied = self._checkpointer.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
            if busy == 0 and frames == copied:
                version = self._checkpointer.execute("PRAGMA user_version").fetchone()[0]
                self._checkpointer.execute(f"PRAGMA user_version={int(version)}")
        except sqlite3.Error as exc:
            log.warning("state database checkpoint failed (retried at the next flush): %s", exc)

    def _flush_and_close(self) -> None:
        try:
            self._flush()
        finally:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
