"""Write-behind of the live fleet to the database: batched, ordered, never blocking handlers.

A write runs every ``interval_s``, or at once after an urgent change (transaction start/end,
charging needs, status, boot, commands). Writes are sequential, so changes that arrive while
one is in flight form the next batch. A failed write is merged back and retried with
back-off; handlers and the live view never wait for the database.

What a ``kill -9`` can lose: changes not yet committed. That is everything that arrived
during the last ``interval_s`` plus the write in flight (meter samples, live session values),
and urgent changes (start/end, charging needs, status, commands) of the last write's duration
(milliseconds). A station's ``last_seen`` is written at most once a minute unless something
else about it changed. The next report of each station reconciles the live values:
registers, power and SoC are absolute and newest-timestamp-wins, and an ``Updated`` for a
transaction whose ``Started`` was lost reopens it. What the next report cannot restore:
samples of the lost interval (a gap in the stored series) and ``NotifyEVChargingNeeds`` of
the last write's duration (the EV sends new needs on renegotiation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from vpp_core.fleet import rows
from vpp_core.fleet.errors import StoreError
from vpp_core.fleet.pending import PendingWrites
from vpp_core.fleet.state import FleetState
from vpp_core.fleet.store import WriteBatch

__all__ = ["BatchSink", "WriteBehind"]

log = logging.getLogger(__name__)


class BatchSink(Protocol):
    """Where batches go: a ``FleetStore`` or a ``StoreThread``."""

    async def write(self, batch: WriteBatch) -> None: ...


class WriteBehind:
    """Run with ``await run()`` inside the core's TaskGroup; ``stop()`` drains and returns."""

    def __init__(
        self,
        state: FleetState,
        store: BatchSink,
        *,
        interval_s: float = 0.5,
        max_queued_rows: int = 200_000,
        retry_max_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._store = store
        self._interval_s = interval_s
        self._max_queued_rows = max_queued_rows
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._failing = False
        self.last_lag_s = 0.0
        self.writes = 0
        self.failed_writes = 0
        self.rows_written = 0
        state.pending.on_urgent = self._wake.set

    def unwritten_age_s(self) -> float:
        """Age of the oldest change not yet committed (0 when all is written)."""
        oldest = self._state.pending.oldest_change_s
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def dropped_samples(self) -> int:
        return self._state.pending.dropped_samples

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        delay = self._interval_s
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
            self._wake.clear()
            ok = await self.flush()
            delay = self._interval_s if ok else min(self._retry_max_s, max(delay * 2, 0.5))
        await self.flush()

    async def flush(self) -> bool:
        """Write what is pending now; ``False`` if the database refused it (kept for retry)."""
        pending = self._state.pending
        if pending.oldest_change_s is None:
            return True
        self._state.pending = PendingWrites(on_urgent=pending.on_urgent)
        self._state.pending.dropped_samples = pending.dropped_samples
        pending.dropped_samples = 0
        batch = self._batch(pending)
        try:
            await self._store.write(batch)
        except StoreError as exc:
            self._state.pending.merge_back(pending, max_queued_rows=self._max_queued_rows)
            self.failed_writes += 1
            if not self._failing:
                log.error("fleet database write failed (will retry): %s", exc)
                self._failing = True
            return False
        if self._failing:
            log.warning("fleet database writes recovered")
            self._failing = False
        self.writes += 1
        self.rows_written += batch.row_count()
        self.last_lag_s = max(0.0, self._clock() - (pending.oldest_change_s or self._clock()))
        self._state.evict_ended(pending.sessions)
        return True

    def _batch(self, pending: PendingWrites) -> WriteBatch:
        state = self._state
        stations = [
            rows.station_row(state.stations[k]) for k in pending.stations if k in state.stations
        ]
        evses = [
            rows.evse_row(state.evses[k], pending_needs=state.pending_needs.get(k))
            for k in pending.evses
            if k in state.evses
        ]
        sessions = [
            rows.session_row(state.sessions_by_key[k])
            for k in pending.sessions
            if k in state.sessions_by_key
        ]
        return WriteBatch(
            stations=stations,
            evses=evses,
            sessions=sessions,
            samples=list(pending.samples),
            profiles=pending.profiles,
            commands=pending.commands,
            security_events=pending.security_events,
        )
