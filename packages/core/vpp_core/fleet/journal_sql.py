"""What the fleet database's journals share (dispatches: ``dispatch_journal``; frequency
services: ``service_journal``): upserts on SQLite and PostgreSQL, one transaction a call, and
every failure raised as ``JournalError`` and counted in
``vpp_{kind}_journal_failures_total{operation}``."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from vpp_core.dispatch.journal import JournalError

__all__ = ["SqlJournal"]


class SqlJournal:
    def __init__(
        self, engine: AsyncEngine, kind: str, *, registry: CollectorRegistry | None = None
    ) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._kind = kind
        self._failures = Counter(
            f"vpp_{kind}_journal_failures",
            f"{kind.capitalize()} journal operations that failed (the database refused or was "
            "unreachable)",
            ["operation"],
            registry=registry,
        )

    def _insert(self, table: Any, *, on_conflict: str, keep: tuple[str, ...] = ()) -> Any:
        """Insert; on a key already there do nothing, or update every column not in ``keep``."""
        stmt = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)
        keys = [c.name for c in table.primary_key.columns]
        if on_conflict == "nothing":
            return stmt.on_conflict_do_nothing(index_elements=keys)
        updates = {
            c.name: stmt.excluded[c.name]
            for c in table.columns
            if c.name not in keys and c.name not in keep
        }
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    async def _execute(self, operation: str, stmt: Any, rows: list[dict[str, Any]]) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(stmt, rows)
        except Exception as exc:
            raise self._failed(operation, f"{operation} failed", exc) from exc

    def _failed(self, operation: str, what: str, exc: Exception) -> JournalError:
        """Count a failed ``operation`` and the error to raise (``what`` happened)."""
        self._failures.labels(operation).inc()
        return JournalError(f"{self._kind} journal: {what}: {exc!r}")
