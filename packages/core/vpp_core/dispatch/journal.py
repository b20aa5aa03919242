"""The dispatch journal: what a restarted core needs to take back every unfinished dispatch.

A dispatch's request, first plan, sessions (their part, the report's inputs: registers at the
start, setpoints, drop-outs, clear results), every profile it sent (station, EVSE, profile id,
stackLevel, validity) and its control intervals are written when they change. A profile is
journaled *before* it is sent: a crash right after a send never leaves a station under a
profile the core does not know of.

``closed`` is false until nothing the dispatch did can still act on a station: every profile
it sent is cleared (or has expired unanswered). On start the runner loads every dispatch not
closed (``vpp_core.dispatch.recovery``).

The port is implemented on the fleet database by ``vpp_core.fleet.dispatch_journal``; dispatch
imports no database code. The JSON shapes of the records are in ``journal_codec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vpp_core.dispatch.errors import DispatchError
from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import DispatchRequest, SessionKey
from vpp_core.dispatch.planner import DispatchPlan

__all__ = [
    "DispatchHeader",
    "DispatchJournal",
    "JournalError",
    "JournaledDispatch",
    "JournaledSession",
    "SentProfile",
]


class JournalError(DispatchError):
    """The journal could not record or read (the database is unreachable or refused)."""


@dataclass(frozen=True, slots=True)
class SentProfile:
    """A VPP profile sent (or about to be sent) to one session's EVSE."""

    profile_id: int
    stack_level: int
    valid_from: datetime
    valid_to: datetime


@dataclass(frozen=True, slots=True)
class JournaledSession:
    """One session's part in a dispatch; ``profile`` is None until one was sent to it."""

    record: SessionRecord
    profile: SentProfile | None

    @property
    def key(self) -> SessionKey:
        return self.record.key


@dataclass(frozen=True, slots=True)
class DispatchHeader:
    """The dispatch itself: request, status, first plan, operator events, and ``closed``."""

    dispatch_id: str
    request: DispatchRequest
    status: str
    initial_plan: DispatchPlan | None
    events: tuple[str, ...]
    closed: bool
    replans: tuple[datetime, ...] = ()  # after drop-outs and rejoins (the report marks them)


@dataclass(frozen=True, slots=True)
class JournaledDispatch:
    """A dispatch as read back from the journal."""

    header: DispatchHeader
    sessions: tuple[JournaledSession, ...]
    intervals: tuple[IntervalRecord, ...]


class DispatchJournal(Protocol):
    """Durable dispatch records. Every method raises :class:`JournalError` on failure."""

    async def save_header(self, header: DispatchHeader) -> None:
        """Insert or replace the dispatch's header row."""
        ...

    async def save_sessions(self, dispatch_id: str, sessions: Sequence[JournaledSession]) -> None:
        """Insert or replace these sessions' rows."""
        ...

    async def append_intervals(self, dispatch_id: str, intervals: Sequence[IntervalRecord]) -> None:
        """Add control intervals (an interval already stored is left as it is)."""
        ...

    async def unfinished(self) -> list[JournaledDispatch]:
        """Every dispatch not closed, oldest first."""
        ...

    async def ended(self, limit: int) -> list[JournaledDispatch]:
        """The newest ``limit`` closed dispatches, oldest first (a restarted core serves their
        reports again)."""
        ...
