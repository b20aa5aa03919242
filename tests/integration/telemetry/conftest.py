"""Fixtures of the telemetry integration tests: mosquitto running the production config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import TestPki
from tests.integration.telemetry.harness import RecordingStore
from tests.integration.telemetry.production_broker import ProductionBroker
from vpp_core.ingest import TelemetrySqlStore, telemetry_engine


@pytest.fixture
def broker(tmp_path: Path, pki: TestPki) -> Iterator[ProductionBroker]:
    b = ProductionBroker(tmp_path, pki.layout)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
async def core_store(tmp_path: Path) -> AsyncIterator[RecordingStore]:
    """The core's telemetry store on a SQLite file, recording what it accepted."""
    engine = telemetry_engine(f"sqlite+aiosqlite:///{tmp_path}/core.db")
    store = RecordingStore(TelemetrySqlStore(engine))
    await store.inner.migrate()
    try:
        yield store
    finally:
        await engine.dispose()
