"""Writes one dispatch's changes to the journal (``journal.DispatchJournal``).

Each :meth:`DispatchRecorder.flush` writes what changed since the last one that succeeded:
the header when status, events or ``closed`` changed, the intervals not yet written, and the
sessions whose record or profile changed. A failing journal is logged once per failing
streak (the adapter counts every failure); what was not written is written by the next
flush that succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from vpp_core.dispatch.journal import (
    DispatchHeader,
    DispatchJournal,
    JournaledSession,
    JournalError,
    SentProfile,
)
from vpp_core.dispatch.journal_codec import record_to_json
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.progress import DispatchProgress

__all__ = ["DispatchRecorder"]

log = logging.getLogger(__name__)


class DispatchRecorder:
    def __init__(
        self,
        journal: DispatchJournal,
        progress: DispatchProgress,
        profile_of: Callable[[SessionKey], SentProfile],
        *,
        profiled: Iterable[SessionKey] = (),
        saved_intervals: int = 0,
    ) -> None:
        self.journal = journal
        self.p = progress
        self._profile_of = profile_of
        #: Sessions whose profile is in the journal (sent, or about to be).
        self.profiled: set[SessionKey] = set(profiled)
        self._saved_intervals = saved_intervals
        self._saved_header: tuple[Any, ...] | None = None
        self._saved_sessions: dict[SessionKey, Any] = {}
        self._failing = False

    async def flush(self, *, sending: Iterable[SessionKey] = (), closed: bool = False) -> bool:
        """Write what changed, with a profile for each of ``sending``; False if it failed."""
        profiled = self.profiled | set(sending)
        sessions = self._changed_sessions(profiled)
        intervals = self.p.intervals[self._saved_intervals :]
        header = self._header(closed)
        try:
            if header is not None:
                await self.journal.save_header(header)
            await self.journal.save_sessions(self.p.dispatch_id, [s for s, _ in sessions])
            await self.journal.append_intervals(self.p.dispatch_id, intervals)
        except JournalError as exc:
            if not self._failing:
                log.error("dispatch %s: cannot journal: %s", self.p.dispatch_id, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("dispatch %s: journal recovered", self.p.dispatch_id)
        self._failing = False
        self.profiled = profiled
        self._saved_intervals += len(intervals)
        if header is not None:
            self._saved_header = self._header_state(closed)
        self._saved_sessions.update((s.key, state) for s, state in sessions)
        return True

    def _header_state(self, closed: bool) -> tuple[Any, ...]:
        p = self.p
        return (p.status, len(p.events), closed, p.initial_plan is not None, len(p.replans))

    def _header(self, closed: bool) -> DispatchHeader | None:
        if self._header_state(closed) == self._saved_header:
            return None
        return DispatchHeader(
            dispatch_id=self.p.dispatch_id,
            request=self.p.request,
            status=self.p.status.value,
            initial_plan=self.p.initial_plan,
            events=tuple(self.p.events),
            closed=closed,
            replans=tuple(self.p.replans),
        )

    def _changed_sessions(self, profiled: set[SessionKey]) -> list[tuple[JournaledSession, Any]]:
        out = []
        for key, rec in self.p.sessions.items():
            state = (record_to_json(rec), key in profiled)
            if self._saved_sessions.get(key) != state:
                profile = self._profile_of(key) if key in profiled else None
                out.append((JournaledSession(rec, profile), state))
        return out
