"""The telemetry store on both databases: a SQLite file and the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vpp_core.ingest import TelemetrySqlStore, telemetry_engine
from vpp_core.ingest.store import telemetry_metadata


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/core.db"
    dsn: str = request.getfixturevalue("pg_dsn")  # session-scoped, created outside the loop
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[TelemetrySqlStore]:
    engine = telemetry_engine(database_url)
    s = TelemetrySqlStore(engine)
    await s.migrate()
    try:
        yield s
    finally:
        async with engine.begin() as conn:  # the PostgreSQL database is shared by the session
            await conn.run_sync(telemetry_metadata.drop_all)
        await engine.dispose()
