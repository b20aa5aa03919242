"""Store-and-forward through a broker outage and a gateway restart during it: the core
ingests every summary exactly once, in order per site.

The issue's 60 s outage is compressed (0.1 s summaries, ~3 s outage); what matters is real:
the production broker (persistence on) is stopped and started again on the same port, the
uplinks keep producing into their SQLite outboxes, and each uplink is closed and a new one
opened on the same outbox file while the broker is down.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import TestPki
from tests.integration.telemetry.harness import (
    RecordingStore,
    SettableCharger,
    charger_state,
    ingest_config,
    uplink_config,
)
from tests.integration.telemetry.production_broker import ProductionBroker
from v2g_gateway.uplink import SiteUplink, UplinkConfig
from vpp_core.ingest import IngestMetrics, TelemetryIngest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]

SITES = ("site-a", "site-b")


def _last_seq(outbox_path: Path) -> int:
    with sqlite3.connect(outbox_path) as conn:
        (next_seq,) = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    return int(next_seq) - 1


async def _produce_for(configs: list[UplinkConfig], seconds: float) -> dict[str, int]:
    """Run one uplink per site for ``seconds``; return how many summaries each queued."""
    charger = SettableCharger(charger_state("cp-1"))
    async with asyncio.TaskGroup() as tg:
        tasks = {c.site: tg.create_task(_run_uplink(c, charger, seconds)) for c in configs}
    return {site: task.result() for site, task in tasks.items()}


async def _run_uplink(config: UplinkConfig, charger: SettableCharger, seconds: float) -> int:
    async with SiteUplink(config, {"cp-1": charger}) as uplink:
        before = uplink.status.outbox_messages
        await asyncio.sleep(seconds)  # the uplink's own 0.1 s timer produces meanwhile
        return uplink.status.outbox_messages - before


async def _drain(configs: list[UplinkConfig], store: RecordingStore) -> None:
    """Run the uplinks (broker up) until every outbox is empty and the core has the last seq."""
    charger = SettableCharger(charger_state("cp-1"))
    async with asyncio.TaskGroup() as tg:
        for config in configs:
            tg.create_task(_drain_one(config, charger, store))


async def _drain_one(config: UplinkConfig, charger: SettableCharger, store: RecordingStore) -> None:
    async with SiteUplink(config, {"cp-1": charger}) as uplink:
        await asyncio.wait_for(uplink.flushed(), 30)
        stop_at = _last_seq(config.outbox_path)
    # the uplink is closed now: nothing newer than stop_at can be produced
    final = _last_seq(config.outbox_path)
    assert final >= stop_at
    await store.wait_until(
        lambda: (
            bool(store.summary_seqs(config.site))
            and store.summary_seqs(config.site)[-1] >= _last_acked(config, final)
        ),
        timeout_s=30,
    )


def _last_acked(config: UplinkConfig, final: int) -> int:
    """The highest seq the broker acknowledged: rows still in the outbox were not."""
    with sqlite3.connect(config.outbox_path) as conn:
        (lowest_left,) = conn.execute("SELECT min(seq) FROM outbox").fetchone()
    return final if lowest_left is None else lowest_left - 1


async def test_outage_and_gateway_restart_lose_and_repeat_nothing(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path, core_store: RecordingStore
) -> None:
    store = core_store
    configs = [uplink_config(pki, broker, tmp_path, site) for site in SITES]
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    async with TelemetryIngest(ingest_config(pki, broker), store, metrics=metrics) as ingest:
        await asyncio.wait_for(ingest.subscribed.wait(), 10)
        await _produce_for(configs, 0.5)  # connected: delivered as produced
        await store.wait_until(lambda: all(store.summary_seqs(s) for s in SITES), timeout_s=10)

        broker.stop()
        queued_first = await _produce_for(configs, 1.5)  # gateway "daemon" runs, then stops
        queued_second = await _produce_for(configs, 1.5)  # restarted on the same outbox
        broker.start()  # same port; the core's persistent session comes back from disk

        await _drain(configs, store)

    for config in configs:
        site = config.site
        assert queued_first[site] >= 5, "outage produced little"
        assert queued_second[site] >= 5, "outage produced little after the restart"
        seqs = store.summary_seqs(site)
        acked = _last_acked(config, _last_seq(config.outbox_path))
        # every summary exactly once, in order, none missing (no events in this test); the
        # core may also hold one the last uplink sent but was closed before its PUBACK
        assert seqs == list(range(1, len(seqs) + 1)), f"{site}: {seqs}"
        assert acked <= len(seqs) <= _last_seq(config.outbox_path)
        assert acked > 20
    assert registry.get_sample_value("vpp_ingest_seq_gaps_total") == 0


async def _killed_after(config: UplinkConfig, seconds: float) -> None:
    """Run the uplink in its own process for ``seconds``, then SIGKILL it: no clean close."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.telemetry.uplink_process",
        config.model_dump_json(),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 20) == b"ready\n"
        await asyncio.sleep(seconds)  # the process's own timer produces meanwhile
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def test_gateway_killed_during_outage_loses_and_repeats_nothing(
    broker: ProductionBroker, pki: TestPki, tmp_path: Path, core_store: RecordingStore
) -> None:
    store = core_store
    config = uplink_config(pki, broker, tmp_path, "site-a")
    registry = CollectorRegistry()
    async with TelemetryIngest(
        ingest_config(pki, broker), store, metrics=IngestMetrics(registry)
    ) as ingest:
        await asyncio.wait_for(ingest.subscribed.wait(), 10)
        await _killed_after(config, 1.0)  # connected, then killed mid-stream
        broker.stop()
        before = _last_seq(config.outbox_path)
        await _killed_after(config, 1.5)  # the daemon restarts during the outage, crashes
        assert _last_seq(config.outbox_path) >= before + 5
        broker.start()
        await _drain([config], store)

    seqs = store.summary_seqs("site-a")
    assert seqs == list(range(1, len(seqs) + 1))
    assert _last_acked(config, _last_seq(config.outbox_path)) <= len(seqs)
    assert registry.get_sample_value("vpp_ingest_seq_gaps_total") == 0
