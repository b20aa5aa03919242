"""Prometheus metrics of the CSMS and the fleet write-behind (own registry, no globals)."""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
        self.messages = _MessageTally(_HANDLER_BUCKETS_S)
        r.register(self.messages)
        #: Called for every websocket message received (vpp_csms_frames_received).
        self.count_frame: Callable[[], None] = self.messages.count_frame
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
        """One CALL handled: counted, and its handler time put in its bucket."""
        self.messages.observe(action, seconds)

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


class _MessageTally(Collector):
    """Per-message series kept as plain numbers, turned into Prometheus samples on scrape.

    ``vpp_csms_frames_received``, ``vpp_csms_messages{action}`` and
    ``vpp_csms_handler_seconds{action}`` change on every message. prometheus_client's
    ``Counter.inc`` and ``Histogram.observe`` take a lock each time (and the histogram walks
    its buckets): ≈ 3 % of the core's samples in the closed loop (py-spy,
    ``benchmarks/csms_load.py --closed-loop 50``). Only the event loop writes these numbers;
    the scrape (another thread) reads a copy of each list, so a sample is never half counted.
    """

    def __init__(self, buckets_s: tuple[float, ...]) -> None:
        self._bounds_s = buckets_s
        self._le = [floatToGoString(bound) for bound in buckets_s] + ["+Inf"]
        self.frames = 0
        #: action -> [count per bucket (the last one +Inf)..., sum of seconds]
        self._actions: dict[str, list[float]] = {}

    def count_frame(self) -> None:
        self.frames += 1

    def observe(self, action: str, seconds: float) -> None:
        tally = self._actions.get(action)
        if tally is None:
            tally = self._actions[action] = [0.0] * (len(self._le) + 1)
        tally[bisect_left(self._bounds_s, seconds)] += 1  # le: the first bound >= seconds
        tally[-1] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        frames = CounterMetricFamily(
            "vpp_csms_frames_received", "Websocket messages received", value=self.frames
        )
        messages = CounterMetricFamily(
            "vpp_csms_messages", "Station CALLs handled, by action", labels=["action"]
        )
        handler = HistogramMetricFamily(
            "vpp_csms_handler_seconds",
            "Time in the handler (fleet update) per CALL",
            labels=["action"],
        )
        for action, tally in sorted(self._actions.items()):
            copy = list(tally)
            cumulative, buckets = 0.0, []
            for le, count in zip(self._le, copy[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            messages.add_metric([action], cumulative)
            handler.add_metric([action], buckets, sum_value=copy[-1])
        yield frames
        yield messages
        yield handler


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
