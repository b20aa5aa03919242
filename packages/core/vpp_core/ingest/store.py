"""The regional-state store on SQLAlchemy Core (async): SQLite (aiosqlite) or PostgreSQL
(asyncpg). Its tables are its own (``telemetry_*``), next to the fleet's, created by
:meth:`TelemetrySqlStore.migrate` and versioned in ``telemetry_schema``.

De-duplication: ``telemetry_site_cursor`` keeps, per site, the outbox ``stream`` and the last
``seq`` accepted from it. A message is new when its stream differs (the site's outbox was
recreated) or its seq is higher; the cursor moves in the same transaction that stores the
message, so a crash between storing and acknowledging leads to a redelivery the cursor
rejects, never to a double count.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    UniqueConstraint,
    event,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from v2g_common.telemetry import SiteEvent, SiteSummary, TelemetryMessage
from vpp_core.ingest.errors import TelemetryStoreError
from vpp_core.ingest.ports import SiteRecord

__all__ = ["SCHEMA_VERSION", "TelemetrySqlStore", "telemetry_engine", "telemetry_metadata"]

SCHEMA_VERSION = 1
telemetry_metadata = MetaData()
_TS = DateTime(timezone=True)

schema_table = Table(
    "telemetry_schema", telemetry_metadata, Column("version", Integer, nullable=False)
)
cursor_table = Table(
    "telemetry_site_cursor",
    telemetry_metadata,
    Column("site", String(64), primary_key=True),
    Column("stream", String(64), nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("updated_at", _TS, nullable=False),
)
state_table = Table(
    "telemetry_site_state",
    telemetry_metadata,
    Column("site", String(64), primary_key=True),
    Column("region", String(64), nullable=False, index=True),
    Column("stream", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", _TS, nullable=False),
    Column("received_at", _TS, nullable=False),
    *(
        Column(name, Integer, nullable=False)
        for name in (
            "chargers",
            "chargers_reporting",
            "sessions_connected",
            "v2x_sessions",
            "fail_safe_chargers",
        )
    ),
    *(
        Column(name, Float, nullable=False)
        for name in (
            "available_discharge_w",
            "available_charge_w",
            "power_w",
            "energy_import_wh",
            "energy_export_wh",
        )
    ),
    *(Column(name, Float) for name in ("soc_min_pct", "soc_mean_pct", "soc_max_pct")),
    Column("fail_safe", Boolean, nullable=False),
)
event_table = Table(
    "telemetry_site_event",
    telemetry_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("region", String(64), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", _TS, nullable=False),
    Column("received_at", _TS, nullable=False),
    Column("code", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("charger", String(64)),
    Column("detail", JSON, nullable=False),
    UniqueConstraint("site", "stream", "seq", name="telemetry_site_event_once"),
)
_STATE_FIELDS = tuple(c.name for c in state_table.columns if c.name != "received_at")


def telemetry_engine(url: str) -> AsyncEngine:
    """An engine for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``; SQLite gets
    WAL and ``synchronous=NORMAL`` (durable against a process crash; the broker redelivers
    what was not acknowledged after a power loss)."""
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


class TelemetrySqlStore:
    """:class:`~vpp_core.ingest.ports.TelemetryStore` on an :class:`AsyncEngine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def migrate(self) -> None:
        """Create the telemetry tables (idempotent); refuse a database from a newer release."""
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(telemetry_metadata.create_all)
                found = (await conn.execute(select(schema_table.c.version))).scalar()
                if found is None:
                    await conn.execute(insert(schema_table).values(version=SCHEMA_VERSION))
                elif found > SCHEMA_VERSION:
                    raise TelemetryStoreError(
                        f"telemetry schema version {found} is newer than this release's "
                        f"{SCHEMA_VERSION}"
                    )
        except SQLAlchemyError as exc:
            raise TelemetryStoreError(f"telemetry migration failed: {exc}") from exc

    async def record_batch(
        self, messages: Sequence[TelemetryMessage], *, received_at: dt.datetime
    ) -> list[bool]:
        """One transaction, a handful of statements whatever the batch size: read the
        cursors of the batch's sites, decide in memory, write cursors, states and events."""
        if not messages:
            return []
        try:
            async with self.engine.begin() as conn:
                cursors = await _load_cursors(conn, {m.site for m in messages})
                outcomes = _accept(messages, cursors)
                accepted = [m for m, new in zip(messages, outcomes, strict=True) if new]
                await _write_accepted(conn, accepted, received_at)
                return outcomes
        except SQLAlchemyError as exc:
            raise TelemetryStoreError(f"telemetry write failed: {exc}") from exc

    async def site_records(self) -> list[SiteRecord]:
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(select(state_table))).mappings().all()
        except SQLAlchemyError as exc:
            raise TelemetryStoreError(f"telemetry read failed: {exc}") from exc
        return [_site_record(row) for row in rows]

    async def events(self, *, site: str, limit: int = 100) -> list[SiteEvent]:
        """The latest events of one site, oldest first."""
        query = (
            select(event_table)
            .where(event_table.c.site == site)
            .order_by(event_table.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_site_event(row) for row in reversed(rows)]


Cursor = tuple[str, int]  # (stream, last_seq)


async def _load_cursors(conn: AsyncConnection, sites: set[str]) -> dict[str, Cursor]:
    c = cursor_table.c
    # FOR UPDATE on PostgreSQL (SQLite serialises writers anyway); the ingest is meant to be
    # the only writer (one MQTT client id), this keeps a second one from racing the cursor
    query = select(c.site, c.stream, c.last_seq).where(c.site.in_(sites)).with_for_update()
    rows = (await conn.execute(query)).all()
    return {site: (stream, last_seq) for site, stream, last_seq in rows}


def _accept(messages: Sequence[TelemetryMessage], cursors: dict[str, Cursor]) -> list[bool]:
    """New = another stream than the cursor's (outbox recreated) or a higher seq; updates
    ``cursors`` as it goes, so repeats within the batch are caught too."""
    outcomes = []
    for m in messages:
        cursor = cursors.get(m.site)
        new = cursor is None or cursor[0] != m.stream or m.seq > cursor[1]
        if new:
            cursors[m.site] = (m.stream, m.seq)
        outcomes.append(new)
    return outcomes


async def _write_accepted(
    conn: AsyncConnection, accepted: Sequence[TelemetryMessage], received_at: dt.datetime
) -> None:
    if not accepted:
        return
    last: dict[str, TelemetryMessage] = {}
    states: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for m in accepted:
        last[m.site] = m
        if isinstance(m, SiteSummary):
            fields = m.model_dump(include=set(_STATE_FIELDS))
            states[m.site] = {**fields, "received_at": received_at}
        else:
            events.append({**m.model_dump(exclude={"schema_id"}), "received_at": received_at})
    cursors = [
        {"site": m.site, "stream": m.stream, "last_seq": m.seq, "updated_at": received_at}
        for m in last.values()
    ]
    await _upsert_cursors(conn, cursors)
    if states:
        await _upsert(conn, state_table, list(states.values()), key="site")
    if events:
        await conn.execute(insert(event_table), events)


async def _upsert_cursors(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    stmt = _dialect_insert(conn, cursor_table)
    c, new = cursor_table.c, stmt.excluded
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["site"],
            set_={"stream": new.stream, "last_seq": new.last_seq, "updated_at": new.updated_at},
            # never backwards, even if a second writer raced us
            where=or_(c.stream != new.stream, c.last_seq < new.last_seq),
        ),
        rows,
    )


async def _upsert(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str
) -> None:
    stmt = _dialect_insert(conn, table)
    changes = {name: stmt.excluded[name] for name in rows[0] if name != key}
    await conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_=changes), rows)


def _dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise TelemetryStoreError(f"unsupported database {conn.dialect.name!r}")


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _site_record(row: RowMapping) -> SiteRecord:
    fields: dict[str, Any] = {str(k): v for k, v in row.items()}
    fields["at"] = _aware(fields["at"])
    fields["received_at"] = _aware(fields["received_at"])
    return SiteRecord(**fields)


def _site_event(row: RowMapping) -> SiteEvent:
    fields = {str(k): v for k, v in row.items() if k not in ("id", "received_at")}
    fields["at"] = _aware(fields["at"])
    if isinstance(fields["detail"], str):
        fields["detail"] = json.loads(fields["detail"])
    return SiteEvent.model_validate(fields)
