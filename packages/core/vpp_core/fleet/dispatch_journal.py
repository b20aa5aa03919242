"""The dispatch journal on the fleet database (migration 3): SQLAlchemy Core, SQLite and
PostgreSQL. Implements ``vpp_core.dispatch.journal.DispatchJournal``.

Each call is one transaction on the store's engine. Any failure is raised as
``JournalError`` and counted in ``vpp_dispatch_journal_failures_total{operation}``; the
dispatch decides what to do (it keeps running; a first profile is not sent unjournaled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vpp_core.dispatch.journal import (
    DispatchHeader,
    JournaledDispatch,
    JournaledSession,
    SentProfile,
)
from vpp_core.dispatch.journal_codec import (
    plan_from_json,
    plan_to_json,
    record_from_json,
    record_to_json,
    request_from_json,
    request_to_json,
)
from vpp_core.dispatch.ledger import IntervalRecord
from vpp_core.dispatch.model import SessionKey
from vpp_core.fleet import schema
from vpp_core.fleet.journal_sql import SqlJournal

__all__ = ["SqlDispatchJournal"]

_INTERVAL_VALUES = [f.name for f in fields(IntervalRecord) if f.name != "t_start"]


class SqlDispatchJournal(SqlJournal):
    """Durable dispatch records in ``dispatches``, ``dispatch_sessions``, ``dispatch_intervals``."""

    def __init__(self, engine: AsyncEngine, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(engine, "dispatch", registry=registry)

    # -- writes -----------------------------------------------------------------------------

    async def save_header(self, header: DispatchHeader) -> None:
        now = datetime.now(UTC)
        stmt = self._insert(schema.dispatches, on_conflict="update", keep=("created_at",))
        row = {
            "dispatch_id": header.dispatch_id,
            "status": header.status,
            "closed": header.closed,
            "request": request_to_json(header.request),
            "initial_plan": plan_to_json(header.initial_plan) if header.initial_plan else None,
            "events": list(header.events),
            "replans": [t.isoformat() for t in header.replans],
            "created_at": now,
            "updated_at": now,
        }
        await self._execute("save_header", stmt, [row])

    async def save_sessions(self, dispatch_id: str, sessions: Sequence[JournaledSession]) -> None:
        if not sessions:
            return
        now = datetime.now(UTC)
        rows = [_session_row(dispatch_id, s, updated_at=now) for s in sessions]
        stmt = self._insert(schema.dispatch_sessions, on_conflict="update")
        await self._execute("save_sessions", stmt, rows)

    async def append_intervals(self, dispatch_id: str, intervals: Sequence[IntervalRecord]) -> None:
        if not intervals:
            return
        rows = [
            {"dispatch_id": dispatch_id, "t_start": r.t_start}
            | {name: getattr(r, name) for name in _INTERVAL_VALUES}
            for r in intervals
        ]
        stmt = self._insert(schema.dispatch_intervals, on_conflict="nothing")
        await self._execute("append_intervals", stmt, rows)

    # -- reads ------------------------------------------------------------------------------

    async def unfinished(self) -> list[JournaledDispatch]:
        t = schema.dispatches
        query = select(t).where(t.c.closed.is_(False)).order_by(t.c.created_at, t.c.dispatch_id)
        return await self._read("unfinished", query)

    async def ended(self, limit: int) -> list[JournaledDispatch]:
        t = schema.dispatches
        newest = t.c.created_at.desc(), t.c.dispatch_id.desc()
        query = select(t).where(t.c.closed.is_(True)).order_by(*newest).limit(limit)
        return list(reversed(await self._read("ended", query)))

    async def _read(self, operation: str, query: Any) -> list[JournaledDispatch]:
        try:
            async with self._engine.connect() as conn:
                headers = [_header(r) for r in await conn.execute(query)]
                return [await _read_dispatch(conn, h) for h in headers]
        except Exception as exc:
            raise self._failed(operation, f"reading {operation} dispatches failed", exc) from exc


def _session_row(dispatch_id: str, s: JournaledSession, *, updated_at: datetime) -> dict[str, Any]:
    key, profile = s.key, s.profile
    return {
        "dispatch_id": dispatch_id,
        "station_id": key.station_id,
        "evse_id": key.evse_id,
        "transaction_id": key.transaction_id,
        "profile_id": profile.profile_id if profile else None,
        "stack_level": profile.stack_level if profile else None,
        "valid_from": profile.valid_from if profile else None,
        "valid_to": profile.valid_to if profile else None,
        "record": record_to_json(s.record),
        "updated_at": updated_at,
    }


def _header(row: Row[Any]) -> DispatchHeader:
    return DispatchHeader(
        dispatch_id=row.dispatch_id,
        request=request_from_json(row.request),
        status=row.status,
        initial_plan=plan_from_json(row.initial_plan) if row.initial_plan else None,
        events=tuple(row.events),
        closed=row.closed,
        replans=tuple(datetime.fromisoformat(t) for t in row.replans or ()),
    )


def _session(row: Row[Any]) -> JournaledSession:
    key = SessionKey(row.station_id, row.evse_id, row.transaction_id)
    profile = None
    if row.profile_id is not None:
        profile = SentProfile(row.profile_id, row.stack_level, row.valid_from, row.valid_to)
    return JournaledSession(record_from_json(key, row.record), profile)


async def _read_dispatch(conn: AsyncConnection, header: DispatchHeader) -> JournaledDispatch:
    s, i = schema.dispatch_sessions, schema.dispatch_intervals
    sessions = await conn.execute(
        select(s)
        .where(s.c.dispatch_id == header.dispatch_id)
        .order_by(s.c.station_id, s.c.evse_id, s.c.transaction_id)
    )
    intervals = await conn.execute(
        select(i).where(i.c.dispatch_id == header.dispatch_id).order_by(i.c.t_start)
    )
    return JournaledDispatch(
        header=header,
        sessions=tuple(_session(r) for r in sessions),
        intervals=tuple(
            IntervalRecord(t_start=r.t_start, **{n: getattr(r, n) for n in _INTERVAL_VALUES})
            for r in intervals
        ),
    )
