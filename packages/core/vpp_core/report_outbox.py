"""Dispatch reports kept in the fleet database until the MQTT broker acknowledged them
(table ``report_outbox``, fleet migration 6): a report whose PUBACK had not come when the
core stopped (broker down, SIGTERM) is published after the next start."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from vpp_core.fleet.schema import report_outbox

__all__ = ["ReportOutbox"]


class ReportOutbox:
    """``put`` before publishing, ``remove`` on PUBACK, ``pending`` after a restart."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, topic: str, payload: bytes) -> None:
        pg = self._engine.dialect.name == "postgresql"
        insert = postgresql.insert if pg else sqlite.insert
        row = {"payload": payload.decode(), "stored_at": datetime.now(UTC)}
        stmt = insert(report_outbox).values(topic=topic, **row)
        stmt = stmt.on_conflict_do_update(index_elements=["topic"], set_=row)
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def remove(self, topic: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(report_outbox).where(report_outbox.c.topic == topic))

    async def pending(self) -> list[tuple[str, bytes]]:
        """(topic, payload) of every report not yet acknowledged, oldest first."""
        query = select(report_outbox.c.topic, report_outbox.c.payload).order_by(
            report_outbox.c.stored_at
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(topic, payload.encode()) for topic, payload in rows]
