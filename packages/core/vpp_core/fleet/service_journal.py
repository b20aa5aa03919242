"""The frequency services' journal on the fleet database (migration 8: ``frequency_services``):
SQLAlchemy Core, SQLite and PostgreSQL, on the dispatch journal's machinery
(``journal_sql``). Implements ``vpp_core.services.journal.ServiceJournal``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from vpp_core.fleet import schema
from vpp_core.fleet.journal_sql import SqlJournal
from vpp_core.services.held import HeldService
from vpp_core.services.journal_codec import (
    held_from_json,
    held_to_json,
    request_from_json,
    request_to_json,
)

__all__ = ["SqlServiceJournal"]


class SqlServiceJournal(SqlJournal):
    def __init__(self, engine: AsyncEngine, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(engine, "service", registry=registry)

    async def save(self, held: HeldService, *, closed: bool) -> None:
        now = datetime.now(UTC)
        row = {
            "service_id": held.service_id,
            "status": held.status.value,
            "closed": closed,
            "request": request_to_json(held.request),
            "state": held_to_json(held),
            "created_at": now,
            "updated_at": now,
        }
        t = schema.frequency_services
        await self._execute(
            "save", self._insert(t, on_conflict="update", keep=("created_at",)), [row]
        )

    async def load(self, *, ended: int) -> Sequence[HeldService]:
        t = schema.frequency_services
        open_ = select(t).where(t.c.closed.is_(False))
        closed = select(t).where(t.c.closed.is_(True)).order_by(t.c.updated_at.desc()).limit(ended)
        try:
            async with self._engine.connect() as conn:
                rows = [*await conn.execute(closed), *await conn.execute(open_)]
        except Exception as exc:
            raise self._failed("load", "reading services failed", exc) from exc
        rows.sort(key=lambda r: (r.created_at, r.service_id))
        return [_held(r) for r in rows]


def _held(row: Any) -> HeldService:
    return held_from_json(row.service_id, row.status, request_from_json(row.request), row.state)
