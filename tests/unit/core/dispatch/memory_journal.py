"""An in-memory ``DispatchJournal`` keeping what the SQL one keeps (records as their JSON
shapes), with :meth:`MemoryJournal.crash_copy`: the journal as a ``kill -9`` would leave it."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vpp_core.dispatch.journal import (
    DispatchHeader,
    JournaledDispatch,
    JournaledSession,
    JournalError,
    SentProfile,
)
from vpp_core.dispatch.journal_codec import record_from_json, record_to_json
from vpp_core.dispatch.ledger import IntervalRecord
from vpp_core.dispatch.model import SessionKey

__all__ = ["MemoryJournal"]


class MemoryJournal:
    def __init__(self) -> None:
        self.headers: dict[str, DispatchHeader] = {}
        self.sessions: dict[str, dict[SessionKey, tuple[dict[str, Any], SentProfile | None]]] = {}
        self.intervals: dict[str, dict[datetime, IntervalRecord]] = {}
        self.failing = False

    def crash_copy(self) -> MemoryJournal:
        return copy.deepcopy(self)

    def _check(self) -> None:
        if self.failing:
            raise JournalError("memory journal: failing on purpose")

    async def save_header(self, header: DispatchHeader) -> None:
        self._check()
        self.headers[header.dispatch_id] = header

    async def save_sessions(self, dispatch_id: str, sessions: Sequence[JournaledSession]) -> None:
        self._check()
        rows = self.sessions.setdefault(dispatch_id, {})
        for s in sessions:
            rows[s.key] = (record_to_json(s.record), s.profile)

    async def append_intervals(self, dispatch_id: str, intervals: Sequence[IntervalRecord]) -> None:
        self._check()
        rows = self.intervals.setdefault(dispatch_id, {})
        for r in intervals:
            rows.setdefault(r.t_start, r)

    async def unfinished(self) -> list[JournaledDispatch]:
        return [d for d in self._all() if not d.header.closed]

    async def ended(self, limit: int) -> list[JournaledDispatch]:
        closed = [d for d in self._all() if d.header.closed]
        return closed[-limit:] if limit else []

    def _all(self) -> list[JournaledDispatch]:
        self._check()
        return [
            JournaledDispatch(
                header=h,
                sessions=tuple(
                    JournaledSession(record_from_json(key, copy.deepcopy(data)), profile)
                    for key, (data, profile) in self.sessions.get(h.dispatch_id, {}).items()
                ),
                intervals=tuple(
                    sorted(self.intervals.get(h.dispatch_id, {}).values(), key=lambda r: r.t_start)
                ),
            )
            for h in self.headers.values()
        ]
