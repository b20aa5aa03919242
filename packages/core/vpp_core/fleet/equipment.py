"""What the CSMS keeps to run real equipment, in the fleet database (migration 5): the idToken
list its Authorize policy reads, the station certificates it issued or revoked, and each
station's device model as reported (NotifyReport, GetVariables, SetVariables).

Token and certificate rows carry a ``revision`` raised on every change (``time.time_ns()``),
like the station registry, so a running core re-reads what the CLI changed (from a few minutes
before the newest revision it has seen: the CLI's clock may lag). A token is
never deleted: ``remove`` marks it ``Invalid`` (a running core must see the change).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vpp_core.fleet import schema
from vpp_core.fleet.errors import StoreError

__all__ = [
    "TOKEN_STATUSES",
    "CertificateRecord",
    "DeviceVariable",
    "EquipmentStore",
    "IdTokenRecord",
]

#: What a listed idToken may be (AuthorizationStatusEnumType values a list can hold).
TOKEN_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")


@dataclass(frozen=True, slots=True)
class IdTokenRecord:
    id_token: str
    token_type: str
    status: str
    group_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A station's client certificate: issued by this CSMS, or only revoked by hand."""

    serial: str  # lower-case hex
    station_id: str
    not_after: datetime | None = None
    issued_at: datetime | None = None
    first_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceVariable:
    """One attribute of one variable of a station's device model, as last reported."""

    component: str
    variable: str
    value: str | None
    reported_at: datetime
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable_instance: str | None = None
    attribute_type: str = "Actual"
    mutability: str | None = None
    data_type: str | None = None
    unit: str | None = None


_NONE_TEXT, _NONE_ID = "", -1


def _variable_row(station_id: str, v: DeviceVariable) -> dict[str, Any]:
    row = asdict(v)
    row["station_id"] = station_id
    for key in ("component_instance", "variable_instance"):
        row[key] = _NONE_TEXT if row[key] is None else row[key]
    for key in ("evse_id", "connector_id"):
        row[key] = _NONE_ID if row[key] is None else row[key]
    return row


def _variable_from_row(row: Any) -> DeviceVariable:
    return DeviceVariable(
        component=row.component,
        variable=row.variable,
        value=row.value,
        reported_at=row.reported_at,
        component_instance=row.component_instance or None,
        evse_id=None if row.evse_id == _NONE_ID else row.evse_id,
        connector_id=None if row.connector_id == _NONE_ID else row.connector_id,
        variable_instance=row.variable_instance or None,
        attribute_type=row.attribute_type,
        mutability=row.mutability,
        data_type=row.data_type,
        unit=row.unit,
    )


def _token_from_row(row: Any) -> IdTokenRecord:
    return IdTokenRecord(row.id_token, row.token_type, row.status, row.group_id, row.expires_at)


def _certificate_from_row(row: Any) -> CertificateRecord:
    return CertificateRecord(
        serial=row.serial,
        station_id=row.station_id,
        not_after=row.not_after,
        issued_at=row.issued_at,
        first_used_at=row.first_used_at,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
    )


class EquipmentStore:
    """Async access to the equipment tables (on the fleet store's engine)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _upsert(self, table: Any, rows: Sequence[dict[str, Any]]) -> Any:
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table)
        keys = [c.name for c in table.primary_key.columns]
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates), list(rows)

    async def _execute(self, what: str, statement: Any, rows: list[dict[str, Any]]) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(statement, rows)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot {what}: {exc}") from exc

    async def _select(self, what: str, query: Any) -> list[Any]:
        try:
            async with self._engine.connect() as conn:
                return list(await conn.execute(query))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot read {what}: {exc}") from exc

    async def _since(self, what: str, table: Any, revision: int) -> tuple[list[Any], int]:
        query = select(table).where(table.c.revision > revision).order_by(table.c.revision)
        rows = await self._select(what, query)
        return rows, max((r.revision for r in rows), default=revision)

    # -- idTokens -------------------------------------------------------------------------
    async def put_token(self, token: IdTokenRecord, *, now: datetime) -> None:
        """Add or change a token (the CLI)."""
        if token.status not in TOKEN_STATUSES:
            raise StoreError(f"token status {token.status!r}: one of {', '.join(TOKEN_STATUSES)}")
        row = {**asdict(token), "created_at": now, "revision": time.time_ns()}
        statement, rows = self._upsert(schema.id_tokens, [row])
        await self._execute("store the idToken", statement, rows)

    async def tokens(self) -> list[IdTokenRecord]:
        t = schema.id_tokens
        rows = await self._select("idTokens", select(t).order_by(t.c.id_token, t.c.token_type))
        return [_token_from_row(r) for r in rows]

    async def token(self, id_token: str, token_type: str) -> IdTokenRecord | None:
        t = schema.id_tokens
        query = select(t).where(t.c.id_token == id_token, t.c.token_type == token_type)
        rows = await self._select("the idToken", query)
        return _token_from_row(rows[0]) if rows else None

    async def tokens_since(self, revision: int) -> tuple[list[IdTokenRecord], int]:
        """Rows changed after ``revision``, and the newest revision seen."""
        rows, newest = await self._since("idTokens", schema.id_tokens, revision)
        return [_token_from_row(r) for r in rows], newest

    # -- certificates ---------------------------------------------------------------------
    async def put_certificates(self, records: Iterable[CertificateRecord]) -> None:
        """Record issued, first used or revoked certificates (one transaction)."""
        rows = [{**asdict(r), "revision": time.time_ns()} for r in records]
        if rows:
            statement, rows = self._upsert(schema.station_certificates, rows)
            await self._execute("record station certificates", statement, rows)

    async def certificates(self, station_id: str | None = None) -> list[CertificateRecord]:
        t = schema.station_certificates
        query = select(t).order_by(t.c.station_id, t.c.issued_at, t.c.serial)
        if station_id is not None:
            query = query.where(t.c.station_id == station_id)
        return [_certificate_from_row(r) for r in await self._select("certificates", query)]

    async def certificates_since(self, revision: int) -> tuple[list[CertificateRecord], int]:
        """Rows changed after ``revision``, and the newest revision seen."""
        rows, newest = await self._since("certificates", schema.station_certificates, revision)
        return [_certificate_from_row(r) for r in rows], newest

    # -- device models --------------------------------------------------------------------
    async def save_variables(self, station_id: str, variables: Iterable[DeviceVariable]) -> int:
        """Upsert reported variables of one station; returns how many rows were written."""
        rows = [_variable_row(station_id, v) for v in variables]
        if rows:
            statement, rows = self._upsert(schema.device_variables, rows)
            await self._execute(f"store the device model of {station_id}", statement, rows)
        return len(rows)

    async def variables(self, station_id: str) -> list[DeviceVariable]:
        t = schema.device_variables
        query = (
            select(t)
            .where(t.c.station_id == station_id)
            .order_by(t.c.component, t.c.evse_id, t.c.connector_id, t.c.variable)
        )
        return [_variable_from_row(r) for r in await self._select("the device model", query)]
