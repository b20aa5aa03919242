"""Write-behind of the live fleet to the database: batched, ordered, never blocking handlers.

A write runs every ``interval_s``, or at once after an urgent change (transaction start/end,
charging needs, status, boot, commands). Writes are sequential, so changes that arrive while
one is in flight form the next batch; handlers and the live view never wait for the database.

Two kinds of failure, told apart by the store (:mod:`vpp_core.fleet.store`):

* the database is unreachable (down, locked, disk full): the batch is merged back in front
  of newer changes and retried with back-off (``interval_s`` doubling up to ``retry_max_s``);
  nothing is lost but what exceeds ``max_queued_rows`` (oldest samples first), counted per
  table (``vpp_fleet_db_dropped_rows_total``);
* the database is up and refuses some rows: the store splits the batch so the good rows land
  and quarantines the refused ones with their reason (``write_quarantine`` table, else the
  file), counted per table and place (``vpp_fleet_db_quarantined_rows_total``) and logged at
  ERROR once per table and error type (then at DEBUG). A refused row is never retried.

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
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol

from vpp_core.fleet import rows
from vpp_core.fleet.errors import StoreError
from vpp_core.fleet.pending import PendingWrites
from vpp_core.fleet.state import FleetState
from vpp_core.fleet.store import TABLE_OF_FIELD, WriteBatch, WriteReport

__all__ = ["BatchSink", "WriteBehind"]

log = logging.getLogger(__name__)


class BatchSink(Protocol):
    """Where batches go: a ``FleetStore`` or a ``StoreThread``."""

    async def write(self, batch: WriteBatch) -> WriteReport: ...


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
        #: Rows quarantined, by (table, where kept: "database" | "file" | "lost").
        self.quarantined_rows: Counter[tuple[str, str]] = Counter()
        self._logged_refusals: set[tuple[str, str]] = set()
        state.pending.on_urgent = self._wake.set

    def unwritten_age_s(self) -> float:
        """Age of the oldest change not yet committed (0 when all is written)."""
        oldest = self._state.pending.oldest_change_s
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def dropped_samples(self) -> int:
        return self._state.pending.dropped_samples

    def dropped_rows(self) -> dict[str, int]:
        """Rows dropped to stay within ``max_queued_rows``, by table."""
        return {TABLE_OF_FIELD[k].name: n for k, n in self._state.pending.dropped.items()}

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
        """Write what is pending now; ``False`` if the database was unreachable (what was not
        written is kept for the retry)."""
        pending = self._state.pending
        if pending.oldest_change_s is None:
            return True
        self._state.pending = PendingWrites(on_urgent=pending.on_urgent, dropped=pending.dropped)
        pending.dropped = Counter()
        batch = self._batch(pending)
        try:
            report = await self._store.write(batch)
        except StoreError as exc:
            self._retry_later(pending, exc)
            return False
        except BaseException:  # a broken store, or cancelled: keep the rows, let it propagate
            self._state.pending.merge_back(pending, max_queued_rows=self._max_queued_rows)
            raise
        self._account(report)
        if report.unwritten is not None:
            self._retry_later(_pending_of(report.unwritten, pending), "unreachable mid-write")
            return False
        if self._failing:
            log.warning("fleet database writes recovered")
            self._failing = False
        self.writes += 1
        self.rows_written += report.written
        self.last_lag_s = max(0.0, self._clock() - (pending.oldest_change_s or self._clock()))
        self._state.evict_ended(pending.sessions)
        return True

    def _retry_later(self, unwritten: PendingWrites, cause: object) -> None:
        self._state.pending.merge_back(unwritten, max_queued_rows=self._max_queued_rows)
        self.failed_writes += 1
        if not self._failing:
            log.error("fleet database write failed (will retry): %s", cause)
            self._failing = True

    def _account(self, report: WriteReport) -> None:
        """Count quarantined rows; log each (table, error type) once at ERROR."""
        for q in report.quarantined:
            self.quarantined_rows[(q.table, q.kept_in)] += 1
            key = (q.table, q.reason.split(":", 1)[0])
            level = logging.DEBUG if key in self._logged_refusals else logging.ERROR
            self._logged_refusals.add(key)
            log.log(
                level,
                "fleet database refused a %s row; quarantined (%s, never retried): %s",
                q.table,
                q.kept_in,
                q.reason,
            )

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


def _pending_of(batch: WriteBatch, written_from: PendingWrites) -> PendingWrites:
    """The changes behind ``batch``'s rows, to merge back (live records by key: the retry
    takes their values as they are then)."""
    return PendingWrites(
        stations={r["station_id"] for r in batch.stations},
        evses={(r["station_id"], r["evse_id"]) for r in batch.evses},
        sessions={(r["station_id"], r["transaction_id"]) for r in batch.sessions},
        samples=deque(batch.samples),
        profiles=batch.profiles,
        commands=batch.commands,
        security_events=batch.security_events,
        oldest_change_s=written_from.oldest_change_s,
        urgent=written_from.urgent,
    )
