"""The ``fleet_db_url`` fixture: a fresh fleet database per test, on SQLite (WAL file) and on
the machine's PostgreSQL (a database of its own next to ``pg_dsn``'s)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fleet_db_url", "pg_admin", "throwaway_pg_database"]


async def pg_admin(admin_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_pg_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """A new empty database on ``server_dsn``'s server (its DSN), dropped afterwards."""
    base = server_dsn.rsplit("/", 1)[0]
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for the fleet store; each test gets an empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.db'}"
        return
    with throwaway_pg_database(request.getfixturevalue("pg_dsn"), "fleet") as url:
        yield url
