"""The fleet database behind the live state: SQLite (WAL, default) or PostgreSQL.

One schema (``vpp_core.fleet.schema``) for both, through SQLAlchemy Core with the async
drivers aiosqlite and asyncpg. The store is written behind (``WriteBehind``) and read at start
to restore the fleet; the station registry lives here too, so the CLI and the server share it.

A write is one transaction. If it fails while the database is unreachable (or the error says
so) it raises :class:`StoreError` and nothing was written: the write-behind retries the
whole batch later. If the database is reachable and refuses the batch anyway, the rows are
at fault: the batch is salvaged (:mod:`vpp_core.fleet.salvage`), good rows land and the
refused ones are quarantined (:mod:`vpp_core.fleet.quarantine`); :class:`WriteReport` says
what happened to each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vpp_core.fleet import rows, schema
from vpp_core.fleet.errors import StoreError, UnknownStationError
from vpp_core.fleet.model import EvseLive, SessionLive, StationEntry, StationLive, V2xLimits
from vpp_core.fleet.quarantine import QuarantineFile, quarantine_row
from vpp_core.fleet.salvage import Item, Refused, reason_of, salvage

__all__ = ["FleetSnapshot", "FleetStore", "Quarantined", "WriteBatch", "WriteReport", "async_url"]

Row = dict[str, Any]
#: Errors that say the database (not the rows) failed: the whole batch is retried later.
_TRANSIENT_ERRORS = (OperationalError, InterfaceError, DisconnectionError, OSError, TimeoutError)


def async_url(url: str) -> str:
    """``sqlite:///x.db`` / ``postgresql://…`` -> the async driver's SQLAlchemy URL."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise StoreError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")


@dataclass
class WriteBatch:
    """Rows to upsert (live records) and to insert (append-only logs) in one transaction."""

    stations: list[Row] = field(default_factory=list)
    evses: list[Row] = field(default_factory=list)
    sessions: list[Row] = field(default_factory=list)
    samples: list[Row] = field(default_factory=list)
    profiles: list[Row] = field(default_factory=list)
    commands: list[Row] = field(default_factory=list)
    security_events: list[Row] = field(default_factory=list)

    def row_count(self) -> int:
        return sum(len(v) for v in vars(self).values())

    def items(self) -> list[Item]:
        """Every row with its field, in write order."""
        return [(f.name, row) for f in fields(self) for row in getattr(self, f.name)]

    @classmethod
    def of_items(cls, items: Sequence[Item]) -> WriteBatch:
        batch = cls()
        for name, row in items:
            getattr(batch, name).append(row)
        return batch


#: The table each ``WriteBatch`` field is written to.
TABLE_OF_FIELD = {
    "stations": schema.station_state,
    "evses": schema.evse_state,
    "sessions": schema.sessions,
    "samples": schema.session_samples,
    "profiles": schema.reported_profiles,
    "commands": schema.command_log,
    "security_events": schema.security_events,
}


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A row the database refused: its table, why, and where it was kept
    (``"database"``: the ``write_quarantine`` table, ``"file"``, or ``"lost"``)."""

    table: str
    reason: str
    kept_in: str


@dataclass
class WriteReport:
    """What one :meth:`FleetStore.write` did."""

    written: int
    quarantined: list[Quarantined] = field(default_factory=list)
    #: Rows not written because the database became unreachable while salvaging.
    unwritten: WriteBatch | None = None


@dataclass
class FleetSnapshot:
    """What a restart restores."""

    entries: list[StationEntry]
    stations: list[StationLive]
    evses: list[tuple[EvseLive, V2xLimits | None]]
    sessions: list[SessionLive]
    ended: list[tuple[str, str]] = field(default_factory=list)  # recently ended sessions
    registry_revision: int = 0  # newest registry change included in ``entries``


def _set_sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class FleetStore:
    """Async access to the fleet database. Create with :meth:`open`; ``await close()``."""

    def __init__(self, engine: AsyncEngine, *, quarantine_file: Path | None = None) -> None:
        self._engine = engine
        self.dialect = engine.dialect.name
        self._quarantine_file = QuarantineFile(quarantine_file)

    @classmethod
    async def open(cls, url: str, *, quarantine_file: Path | None = None) -> FleetStore:
        """Connect and apply pending migrations; ``quarantine_file`` is where refused rows
        go when the database refuses the quarantine table too."""
        engine = create_async_engine(
            async_url(url),
            pool_pre_ping=True,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        store = cls(engine, quarantine_file=quarantine_file)
        try:
            await store.migrate()
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(f"cannot open fleet database {url!r}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The engine, for stores of other tables in the same database (migrated here)."""
        return self._engine

    async def migrate(self) -> int:
        """Run the migrations not yet recorded; return the schema version."""
        async with self._engine.begin() as conn:
            await conn.run_sync(schema.schema_version.create, checkfirst=True)
            done = set((await conn.execute(select(schema.schema_version.c.version))).scalars())
            for version, _what, change in schema.MIGRATIONS:
                if version in done:
                    continue
                await conn.run_sync(change)
                await conn.execute(
                    insert(schema.schema_version).values(
                        version=version, applied_at=datetime.now(UTC)
                    )
                )
        return schema.SCHEMA_VERSION

    async def schema_versions(self) -> list[int]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(schema.schema_version.c.version))
            return sorted(result.scalars())

    # -- write-behind -------------------------------------------------------------------

    def _upsert(self, table: Any, *, on_conflict: str = "update") -> Any:
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(table)
        keys = [c.name for c in table.primary_key.columns]
        if on_conflict == "nothing":
            return stmt.on_conflict_do_nothing(index_elements=keys)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    async def write(self, batch: WriteBatch) -> WriteReport:
        """Write one batch in one transaction; a batch the reachable database refuses is
        salvaged. Raises :class:`StoreError` (nothing written) when the database is
        unreachable; never anything else."""
        try:
            async with self._engine.begin() as conn:
                await self._write(conn, batch)
        except Exception as exc:
            if await self._transient(exc):
                raise StoreError(f"fleet write of {batch.row_count()} rows failed: {exc}") from exc
            return await self._salvage(batch, exc)
        return WriteReport(written=batch.row_count())

    async def _write_items(self, items: Sequence[Item]) -> None:
        async with self._engine.begin() as conn:
            await self._write(conn, WriteBatch.of_items(items))

    async def _transient(self, exc: BaseException) -> bool:
        """The database failed (retry later), rather than the rows it was given."""
        if isinstance(exc, _TRANSIENT_ERRORS) or getattr(exc, "connection_invalidated", False):
            return True
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return True
        return False

    async def _salvage(self, batch: WriteBatch, error: BaseException) -> WriteReport:
        outcome = await salvage(
            batch.items(), error, write=self._write_items, transient=self._transient
        )
        kept_in = await self._quarantine(outcome.refused)
        return WriteReport(
            written=outcome.written,
            quarantined=[
                Quarantined(TABLE_OF_FIELD[r.item[0]].name, r.reason, kept_in)
                for r in outcome.refused
            ],
            unwritten=WriteBatch.of_items(outcome.unwritten) if outcome.unwritten else None,
        )

    async def _quarantine(self, refused: Sequence[Refused]) -> str:
        """Keep refused rows in ``write_quarantine``, else the file; where they went."""
        if not refused:
            return "database"
        now = datetime.now(UTC)
        kept = [
            quarantine_row(TABLE_OF_FIELD[name].name, row, r.reason, at=now)
            for r in refused
            for name, row in (r.item,)
        ]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(schema.write_quarantine), kept)
            return "database"
        except Exception as exc:
            database_error = reason_of(exc)
        try:
            self._quarantine_file.append(kept, database_error=database_error)
            return "file"
        except (OSError, ValueError):
            return "lost"

    async def quarantined(self) -> list[Row]:
        """The ``write_quarantine`` table, oldest first (for operators and tests)."""
        t = schema.write_quarantine
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(t).order_by(t.c.id))).mappings()]

    async def _write(self, conn: AsyncConnection, batch: WriteBatch) -> None:
        upserts = (
            (schema.station_state, batch.stations),
            (schema.evse_state, batch.evses),
            (schema.sessions, batch.sessions),
            (schema.reported_profiles, batch.profiles),
        )
        for table, table_rows in upserts:
            if table_rows:
                await conn.execute(self._upsert(table), table_rows)
        if batch.samples:
            await conn.execute(
                self._upsert(schema.session_samples, on_conflict="nothing"), batch.samples
            )
        if batch.commands:
            await conn.execute(insert(schema.command_log), batch.commands)
        if batch.security_events:
            await conn.execute(insert(schema.security_events), batch.security_events)

    # -- restore ------------------------------------------------------------------------

    async def load(self, *, samples_in_memory: int, recently_ended: int = 10_000) -> FleetSnapshot:
        """The registry, station and EVSE state, and the sessions still active."""
        async with self._engine.connect() as conn:
            registry = list(await conn.execute(select(schema.stations)))
            entries = [rows.entry_from_row(r) for r in registry]
            stations = [
                rows.station_from_row(r) for r in await conn.execute(select(schema.station_state))
            ]
            evses = [rows.evse_from_row(r) for r in await conn.execute(select(schema.evse_state))]
            query = select(schema.sessions).where(schema.sessions.c.active.is_(True))
            sessions = [
                rows.session_from_row(r, samples_in_memory=samples_in_memory)
                for r in await conn.execute(query)
            ]
            ended = await self._recently_ended(conn, limit=recently_ended)
        revision = max((r.revision for r in registry), default=0)
        return FleetSnapshot(entries, stations, evses, sessions, ended, revision)

    async def load_station(self, station_id: str, *, samples_in_memory: int) -> FleetSnapshot:
        """One station's EVSEs and active sessions as the database has them (a cluster's CSMS
        node takes a station over from the node that held it before)."""
        evse_t, session_t = schema.evse_state, schema.sessions
        async with self._engine.connect() as conn:
            evses = [
                rows.evse_from_row(r)
                for r in await conn.execute(select(evse_t).where(evse_t.c.station_id == station_id))
            ]
            query = select(session_t).where(
                session_t.c.station_id == station_id, session_t.c.active.is_(True)
            )
            sessions = [
                rows.session_from_row(r, samples_in_memory=samples_in_memory)
                for r in await conn.execute(query)
            ]
        return FleetSnapshot([], [], evses, sessions)

    async def _recently_ended(self, conn: AsyncConnection, *, limit: int) -> list[tuple[str, str]]:
        t = schema.sessions
        query = (
            select(t.c.station_id, t.c.transaction_id)
            .where(t.c.active.is_(False))
            .order_by(t.c.ended_at.desc())
            .limit(limit)
        )
        return [(r.station_id, r.transaction_id) for r in await conn.execute(query)][::-1]

    async def session_row(self, station_id: str, transaction_id: str) -> Row | None:
        t = schema.sessions
        query = select(t).where(t.c.station_id == station_id, t.c.transaction_id == transaction_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return dict(row) if row else None

    async def samples(self, station_id: str, transaction_id: str) -> list[Row]:
        t = schema.session_samples
        query = (
            select(t)
            .where(t.c.station_id == station_id, t.c.transaction_id == transaction_id)
            .order_by(t.c.sampled_at)
        )
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def commands(self, station_id: str) -> list[Row]:
        t = schema.command_log
        query = select(t).where(t.c.station_id == station_id).order_by(t.c.id)
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def table_count(self, table_name: str) -> int:
        table = schema.metadata.tables[table_name]
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    # -- registry -----------------------------------------------------------------------

    async def add_station(self, entry: StationEntry, *, now: datetime) -> None:
        """Register a station; :class:`StoreError` if the identity exists."""
        try:
            async with self._engine.begin() as conn:
                row = rows.entry_row(entry, created_at=now, revision=time.time_ns())
                await conn.execute(insert(schema.stations), [row])
        except IntegrityError as exc:
            raise StoreError(f"station {entry.station_id!r} is already registered") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot add station {entry.station_id!r}: {exc}") from exc

    async def add_stations(self, entries: Sequence[StationEntry], *, now: datetime) -> None:
        """Register many stations in one transaction (bulk provisioning); all or none."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(schema.stations),
                    [rows.entry_row(e, created_at=now, revision=time.time_ns()) for e in entries],
                )
        except IntegrityError as exc:
            raise StoreError("a station in the batch is already registered") from exc

    async def update_station(self, station_id: str, **values: Any) -> None:
        t = schema.stations
        change = update(t).where(t.c.station_id == station_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(change.values(**values, revision=time.time_ns()))
        if result.rowcount == 0:
            raise UnknownStationError(station_id)

    async def replace_password_hash(self, station_id: str, *, old: str, new: str) -> bool:
        """Store ``new`` as the station's password hash if it is still ``old`` (a password
        changed meanwhile wins); True if replaced."""
        t = schema.stations
        change = update(t).where(t.c.station_id == station_id, t.c.password_hash == old)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    change.values(password_hash=new, revision=time.time_ns())
                )
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot rehash the password of {station_id!r}: {exc}") from exc
        return bool(result.rowcount)

    async def stations_since(self, revision: int) -> tuple[list[StationEntry], int]:
        """Registry entries changed after ``revision``, and the newest revision seen.

        Cheap when nothing changed (an indexed range scan), so a running core can poll it.
        """
        t = schema.stations
        query = select(t).where(t.c.revision > revision).order_by(t.c.revision)
        try:
            async with self._engine.connect() as conn:
                result = list(await conn.execute(query))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot read the station registry: {exc}") from exc
        newest = max((r.revision for r in result), default=revision)
        return [rows.entry_from_row(r) for r in result], newest

    async def stations(self) -> Sequence[StationEntry]:
        query = select(schema.stations).order_by(schema.stations.c.station_id)
        async with self._engine.connect() as conn:
            return [rows.entry_from_row(r) for r in await conn.execute(query)]


def _json_text(value: Any) -> str:
    """JSON columns (command log requests, reported profiles) as text: orjson, not the
    standard library's encoder, whose share of the GIL slowed a 10k-station dispatch fan-out
    by a few per cent (``benchmarks/dispatch_fanout.py --mode ocpp``)."""
    return orjson.dumps(value, default=str).decode()
