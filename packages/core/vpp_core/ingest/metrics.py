"""Prometheus metrics of the ingest, and per-region gauges computed at scrape time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpp_core.ingest.board import SiteBoard
from vpp_core.ingest.regions import RegionState, aggregate_regions

__all__ = ["IngestMetrics", "RegionCollector"]

_REGION_GAUGES: tuple[tuple[str, str, Callable[[RegionState], float]], ...] = (
    ("vpp_region_sites", "sites that ever reported", lambda r: r.sites),
    ("vpp_region_sites_fresh", "sites with a fresh summary", lambda r: r.sites_fresh),
    ("vpp_region_sites_fail_safe", "fresh sites in fail-safe", lambda r: r.sites_fail_safe),
    ("vpp_region_sessions_connected", "connected sessions", lambda r: r.sessions_connected),
    ("vpp_region_v2x_sessions", "V2X-capable sessions", lambda r: r.v2x_sessions),
    (
        "vpp_region_available_discharge_w",
        "available discharge (W)",
        lambda r: r.available_discharge_w,
    ),
    ("vpp_region_available_charge_w", "available charge (W)", lambda r: r.available_charge_w),
    ("vpp_region_power_w", "present power, + into EVs (W)", lambda r: r.power_w),
)


class IngestMetrics:
    """Counters of the ingest; pass a private ``registry`` in tests."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        self.registry = reg
        self.messages = Counter(
            "vpp_ingest_messages",
            "telemetry messages by kind and outcome (accepted, duplicate, invalid)",
            ["kind", "outcome"],
            registry=reg,
        )
        self.invalid = Counter(
            "vpp_ingest_invalid", "refused payloads by reason", ["reason"], registry=reg
        )
        self.store_errors = Counter(
            "vpp_ingest_store_errors", "failed store transactions (retried)", registry=reg
        )
        self.seq_gaps = Counter(
            "vpp_ingest_seq_gaps",
            "messages missing between accepted ones of a site (outbox drops, broker queue limits)",
            registry=reg,
        )
        self.listener_errors = Counter(
            "vpp_ingest_listener_errors",
            "events stored whose listener (e.g. the frequency services' report) failed",
            registry=reg,
        )
        self.connected = Gauge("vpp_ingest_connected", "1 while connected", registry=reg)
        self.delay = Histogram(
            "vpp_ingest_delay_seconds",
            "site timestamp to stored in the core, accepted summaries",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=reg,
        )


class RegionCollector(Collector):
    """``vpp_region_*{region=...}`` from the board, aggregated when scraped."""

    def __init__(
        self,
        board: SiteBoard,
        *,
        stale_after_s: float,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._board = board
        self._stale_after_s = stale_after_s
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        regions = aggregate_regions(
            self._board.snapshot(), now=self._clock(), stale_after_s=self._stale_after_s
        )
        for name, doc, value in _REGION_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["region"])
            for region in regions:
                family.add_metric([region.region], float(value(region)))
            yield family
