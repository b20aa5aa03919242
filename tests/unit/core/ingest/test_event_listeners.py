"""The ingest hands each new event, once stored, to its listeners (the frequency services'
report takes the gateways' ``FREQUENCY_ACTIVATION``); a redelivery is not new, and a failing
listener is logged once and counted without stopping the ingest or the other listeners."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from v2g_common.telemetry import SiteEvent, TelemetryMessage
from vpp_core.ingest import IngestConfig, IngestMetrics, SiteRecord, TelemetryIngest


class SeqStore:
    """New when the seq is higher than the last one seen (the real store's rule)."""

    def __init__(self) -> None:
        self.last = -1

    async def record_batch(
        self, messages: Sequence[TelemetryMessage], *, received_at: dt.datetime
    ) -> list[bool]:
        out = []
        for m in messages:
            out.append(m.seq > self.last)
            self.last = max(self.last, m.seq)
        return out

    async def site_records(self) -> list[SiteRecord]:
        return []


def event(seq: int) -> SiteEvent:
    return SiteEvent(
        site="CS1", region="r", stream="s", seq=seq, at=dt.datetime.now(dt.UTC),
        code="FREQUENCY_ACTIVATION", severity="info", charger="CS1", detail={"x": 1},
    )  # fmt: skip


async def test_new_events_reach_every_listener_and_a_failing_one_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = IngestConfig(
        broker_host="h", ca_file=Path("c"), cert_file=Path("c"), key_file=Path("k")
    )
    registry = CollectorRegistry()
    ingest = TelemetryIngest(config, SeqStore(), metrics=IngestMetrics(registry))
    seen: list[int] = []

    def broken(e: SiteEvent) -> None:
        raise RuntimeError("report down")

    ingest.on_event(broken)
    ingest.on_event(lambda e: seen.append(e.seq))
    with caplog.at_level(logging.ERROR):
        await ingest._store([event(1), event(1), event(2)])  # the second is a redelivery
        await ingest._store([event(3)])

    assert seen == [1, 2, 3]
    assert registry.get_sample_value("vpp_ingest_listener_errors_total") == 3
    assert caplog.text.count("event listener failed") == 1
