"""Prometheus metrics of the CSMS and the fleet write-behind (own registry, no globals)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CsmsMetrics"]

_HANDLER_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
)  # fmt: skip
_COMMAND_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class CsmsMetrics:
    """All series in one :class:`CollectorRegistry` (``registry``), served by the app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.connections = Gauge("vpp_csms_connections", "Open station connections", registry=r)
        self.connects = Counter("vpp_csms_connects", "Accepted station connections", registry=r)
        self.refusals = Counter(
            "vpp_csms_handshake_refusals", "Refused handshakes", ["status"], registry=r
        )
        self.opening_refusals = Counter(
            "vpp_csms_opening_refusals",
            "Connections closed at accept: max_opening_connections were opening",
            registry=r,
        )
        self.opening_connections = Gauge(
            "vpp_csms_opening_connections",
            "Connections in their opening phase (TLS, HTTP upgrade)",
            registry=r,
        )
        self.password_rehashes = Counter(
            "vpp_csms_password_rehashes",
            "Old-scheme password hashes rewritten at login, by result",
            ["result"],
            registry=r,
        )
        self.frames = Counter("vpp_csms_frames_received", "Websocket messages received", registry=r)
        self.messages = Counter(
            "vpp_csms_messages", "Station CALLs handled, by action", ["action"], registry=r
        )
        self.handler_seconds = Histogram(
            "vpp_csms_handler_seconds",
            "Time in the handler (fleet update) per CALL",
            ["action"],
            buckets=_HANDLER_BUCKETS_S,
            registry=r,
        )
        self.commands = Counter(
            "vpp_csms_commands",
            "Commands to stations by outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.command_seconds = Histogram(
            "vpp_csms_command_seconds",
            "Command round trip",
            ["action"],
            buckets=_COMMAND_BUCKETS_S,
            registry=r,
        )
        self.gc_pause_seconds = Histogram(
            "vpp_runtime_gc_pause_seconds",
            "Garbage-collector pauses of the core process, by generation",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self._message_children: dict[str, tuple[Any, Any]] = {}
        self._command_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._gc_started_s = 0.0

    def watch_gc(self) -> Callable[[str, dict[str, int]], None]:
        """Time every collection (``gc.callbacks``): full-collection pauses stall all stations.

        Returns the callback; remove it from ``gc.callbacks`` when done."""
        children = [self.gc_pause_seconds.labels(str(g)) for g in range(3)]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                self._gc_started_s = time.perf_counter()
            else:
                children[info["generation"]].observe(time.perf_counter() - self._gc_started_s)

        gc.callbacks.append(on_gc)
        return on_gc

    def observe_message(self, action: str, seconds: float) -> None:
        children = self._message_children.get(action)
        if children is None:
            children = (self.messages.labels(action), self.handler_seconds.labels(action))
            self._message_children[action] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_command(self, action: str, outcome: str, seconds: float) -> None:
        children = self._command_children.get((action, outcome))
        if children is None:  # labels() costs a lock and a tuple per call: once per key
            children = (self.commands.labels(action, outcome), self.command_seconds.labels(action))
            self._command_children[(action, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_fleet(
        self,
        *,
        last_write_lag_s: Callable[[], float],
        unwritten_age_s: Callable[[], float],
        dropped_samples: Callable[[], float],
        active_sessions: Callable[[], float],
        quarantined_rows: Callable[[], Mapping[tuple[str, str], int]],
        dropped_rows: Callable[[], Mapping[str, int]],
    ) -> None:
        """Gauges and counters read on scrape from the write-behind and the live fleet."""
        r = self.registry
        gauges = (
            (
                "vpp_fleet_db_write_lag_seconds",
                "Change-to-commit s of the last write",
                last_write_lag_s,
            ),
            (
                "vpp_fleet_db_unwritten_age_seconds",
                "Age of oldest unwritten change",
                unwritten_age_s,
            ),
            ("vpp_fleet_db_dropped_samples", "Samples dropped, DB unreachable", dropped_samples),
            ("vpp_fleet_sessions_active", "Active charging sessions", active_sessions),
        )
        for name, doc, read in gauges:
            Gauge(name, doc, registry=r).set_function(read)
        r.register(_WriteLosses(quarantined_rows, dropped_rows))


class _WriteLosses(Collector):
    """Rows the fleet database did not get, read from the write-behind on scrape."""

    def __init__(
        self,
        quarantined: Callable[[], Mapping[tuple[str, str], int]],
        dropped: Callable[[], Mapping[str, int]],
    ) -> None:
        self._quarantined = quarantined
        self._dropped = dropped

    def collect(self) -> Iterator[CounterMetricFamily]:
        quarantined = CounterMetricFamily(
            "vpp_fleet_db_quarantined_rows",
            "Rows the database refused, kept in write_quarantine, the file, or lost",
            labels=["table", "kept_in"],
        )
        for (table, kept_in), count in sorted(self._quarantined().items()):
            quarantined.add_metric([table, kept_in], count)
        dropped = CounterMetricFamily(
            "vpp_fleet_db_dropped_rows",
            "Rows dropped to stay within max_queued_rows while the database was unreachable",
            labels=["table"],
        )
        for table, count in sorted(self._dropped().items()):
            dropped.add_metric([table], count)
        yield quarantined
        yield dropped
