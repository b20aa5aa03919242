"""Helpers of the telemetry integration tests: configurations pointing at the test broker, a
charger whose state the test sets, and a store that records what it accepted."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.conftest import TestPki
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_common.telemetry import SiteSummary, TelemetryMessage
from v2g_gateway.uplink import ChargerState, UplinkConfig
from vpp_core.ingest import IngestConfig, SiteRecord, TelemetrySqlStore


def uplink_config(
    pki: TestPki, broker: ProductionBroker, tmp_path: Path, site: str, **overrides: object
) -> UplinkConfig:
    cert, key = pki.client(site)
    values: dict[str, object] = {
        "site": site,
        "region": "north",
        "broker_host": "127.0.0.1",
        "broker_port": broker.port,
        "ca_file": pki.ca,
        "cert_file": cert,
        "key_file": key,
        "summary_interval_s": 0.1,
        "outbox_path": tmp_path / f"outbox-{site}.sqlite3",
        "outbox_fsync": False,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
    }
    values.update(overrides)
    return UplinkConfig.model_validate(values)


def ingest_config(pki: TestPki, broker: ProductionBroker, **overrides: object) -> IngestConfig:
    cert, key = pki.client("core")
    values: dict[str, object] = {
        "broker_host": "127.0.0.1",
        "broker_port": broker.port,
        "ca_file": pki.ca,
        "cert_file": cert,
        "key_file": key,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
    }
    values.update(overrides)
    return IngestConfig.model_validate(values)


class SettableCharger:
    """A :class:`ChargerStateSource` returning whatever the test last set."""

    def __init__(self, state: ChargerState) -> None:
        self.state = state

    async def read_charger_state(self) -> ChargerState:
        return self.state


def charger_state(charger_id: str, **overrides: object) -> ChargerState:
    values: dict[str, object] = {
        "charger_id": charger_id,
        "sessions_connected": 2,
        "v2x_sessions": 1,
        "available_discharge_w": 7000.0,
        "available_charge_w": 11000.0,
        "power_w": -3500.0,
        "soc_pct": (40.0, 80.0),
        "energy_import_wh": 1200.0,
        "energy_export_wh": 300.0,
        "fail_safe": False,
    }
    values.update(overrides)
    return ChargerState(**values)  # type: ignore[arg-type]


class RecordingStore:
    """The real SQL store, plus the list of messages it accepted (in acceptance order)."""

    def __init__(self, inner: TelemetrySqlStore) -> None:
        self.inner = inner
        self.accepted: list[TelemetryMessage] = []
        self.duplicates: list[TelemetryMessage] = []
        self._changed = asyncio.Event()

    async def record_batch(
        self, messages: Sequence[TelemetryMessage], *, received_at: dt.datetime
    ) -> list[bool]:
        outcomes = await self.inner.record_batch(messages, received_at=received_at)
        for message, new in zip(messages, outcomes, strict=True):
            (self.accepted if new else self.duplicates).append(message)
        self._changed.set()
        return outcomes

    async def site_records(self) -> list[SiteRecord]:
        return await self.inner.site_records()

    def summary_seqs(self, site: str) -> list[int]:
        return [m.seq for m in self.accepted if isinstance(m, SiteSummary) and m.site == site]

    async def wait_until(self, condition: Callable[[], bool], *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()
