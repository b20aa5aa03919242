"""The ``fleet_db_url`` fixture: a fresh fleet database per test, on SQLite (WAL file) and on
the machine's PostgreSQL (a database of its own next to ``pg_dsn``'s)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fleet_db_url", "pg_admin"]


async def pg_admin(admin_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for the fleet store; each test gets an empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.db'}"
        return
    server_dsn: str = request.getfixturevalue("pg_dsn")
    base, _db = server_dsn.rsplit("/", 1)
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
