"""The core's GC policy: periodic freezes, and maintenance collections outside dispatches."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from vpp_core.config import RuntimeConfig
from vpp_core.heap import HeapPolicy


class RecordingCollector:
    """Stands in for the ``gc`` module in the timing tests: records what the policy asks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def set_threshold(self, gen0: int, gen1: int = 0, gen2: int = 0, /) -> None:
        self.calls.append(f"threshold {gen0},{gen1},{gen2}")

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


RUNTIME = RuntimeConfig(
    gc_freeze_interval_s=30.0, gc_full_collect_interval_s=3600.0, gc_full_collect_max_defer_s=600.0
)


def _policy(busy: list[bool]) -> tuple[HeapPolicy, RecordingCollector, Clock]:
    collector, clock = RecordingCollector(), Clock()
    policy = HeapPolicy(RUNTIME, busy=lambda: busy[0], collector=collector, clock=clock)
    return policy, collector, clock


def test_start_applies_thresholds_then_freezes_the_start_up_heap() -> None:
    policy, collector, _ = _policy([False])
    policy.start()
    assert collector.calls == ["threshold 50000,20,100", "collect", "freeze"]


def test_freezes_on_its_interval_only() -> None:
    policy, collector, clock = _policy([False])
    policy.start()
    collector.calls.clear()
    clock.t += 29.0
    assert policy.tick() is None
    clock.t += 1.0
    assert policy.tick() == "freeze"
    assert policy.tick() is None  # not again until the next interval
    assert collector.calls == ["freeze"]


def test_full_collection_waits_for_the_dispatch_then_runs() -> None:
    busy = [True]
    policy, collector, clock = _policy(busy)
    policy.start()
    collector.calls.clear()
    clock.t += 3600.0
    assert policy.tick() == "freeze"  # a dispatch runs: only the cheap freeze
    busy[0] = False
    clock.t += 1.0
    assert policy.tick() == "full"
    assert collector.calls[-3:] == ["unfreeze", "collect", "freeze"]
    assert policy.full_collections == 1


def test_full_collection_is_not_deferred_beyond_its_limit() -> None:
    policy, _collector, clock = _policy([True])  # a dispatch that never ends
    policy.start()
    clock.t += 3600.0 + 599.0
    assert policy.tick() == "freeze"
    clock.t += 1.0
    assert policy.tick() == "full"


class _Node:
    def __init__(self) -> None:
        self.other: Any = self


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_a_frozen_cycle_is_reclaimed_by_the_maintenance_collection() -> None:
    """With the real collector: a cycle frozen by the policy survives collections until the
    maintenance collection, which reclaims it (cyclic garbage is bounded, not leaked)."""
    clock = Clock()
    policy = HeapPolicy(RUNTIME, collector=gc, clock=clock)
    policy.start()
    node = _Node()
    gone = weakref.ref(node)
    clock.t += 30.0
    assert policy.tick() == "freeze"
    del node
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's reach
    clock.t += 3600.0
    assert policy.tick() == "full"
    assert gone() is None
    assert policy.last_full_pause_s is not None
    assert policy.last_full_pause_s >= 0
