"""The core's garbage-collection policy (``[runtime]``): short pauses with ~10k connections.

CPython's cyclic collector walks every object of the generations it collects, and the walk is
memory-bound (a cache miss per reference). A core serving 10k stations holds millions of
long-lived objects (connections, sessions, fleet state), so once they sit in the collected
generations a middle collection pauses the event loop for 0.25-0.3 s and a full one for
0.7-0.9 s (``benchmarks/dispatch_fanout.py --mode ocpp --stations 10000`` prints the pauses):
long enough to push a 10k-station dispatch fan-out past its two-second budget.

The policy:

* at start: thresholds from config, one collection, then ``gc.freeze()`` of the start-up heap;
* every ``gc_freeze_interval_s``: ``gc.freeze()`` again, moving what survived so far (the
  fleet's long-lived objects) out of reach of later collections, which then only walk what
  was allocated since;
* every ``gc_full_collect_interval_s``: ``gc.unfreeze()``, a full collection and a new
  freeze, so reference cycles frozen in the meantime (closed connections, mostly) are
  reclaimed. It waits while ``busy()`` says a dispatch is running, at most
  ``gc_full_collect_max_defer_s``; its pause is logged.

Acyclic garbage is freed by reference counting whatever the generation; only cycles wait for
the maintenance collection, which bounds the memory they can hold.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Protocol

from vpp_core.config import RuntimeConfig

__all__ = ["HeapPolicy"]

log = logging.getLogger(__name__)


class CollectorControl(Protocol):
    """The parts of the ``gc`` module the policy drives (``gc`` itself in production)."""

    def set_threshold(self, gen0: int, gen1: int = ..., gen2: int = ..., /) -> None: ...
    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...


class HeapPolicy:
    def __init__(
        self,
        runtime: RuntimeConfig,
        *,
        busy: Callable[[], bool] = lambda: False,
        collector: CollectorControl = gc,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self._busy = busy
        self._gc = collector
        self._clock = clock
        now = clock()
        self._last_freeze = now
        self._last_full = now
        self.full_collections = 0
        self.last_full_pause_s: float | None = None

    def start(self) -> None:
        """Apply the thresholds and freeze the start-up heap (once the server listens)."""
        r = self.runtime
        self._gc.set_threshold(r.gc_gen0_threshold, r.gc_gen1_threshold, r.gc_gen2_threshold)
        if r.gc_freeze_after_start:
            self._gc.collect()
            self._gc.freeze()  # modules, schemas, validators: never walked again
        self._last_freeze = self._last_full = self._clock()

    def tick(self) -> str | None:
        """Do what is due now: ``"full"``, ``"freeze"`` or nothing (None)."""
        r, now = self.runtime, self._clock()
        if r.gc_full_collect_interval_s and now - self._last_full >= r.gc_full_collect_interval_s:
            overdue = now - self._last_full - r.gc_full_collect_interval_s
            if not self._busy() or overdue >= r.gc_full_collect_max_defer_s:
                self._full_collection(now)
                return "full"
        if r.gc_freeze_interval_s and now - self._last_freeze >= r.gc_freeze_interval_s:
            self._gc.freeze()
            self._last_freeze = now
            return "freeze"
        return None

    def _full_collection(self, now: float) -> None:
        started = time.perf_counter()
        self._gc.unfreeze()
        found = self._gc.collect()
        self._gc.freeze()
        self.last_full_pause_s = time.perf_counter() - started
        self.full_collections += 1
        self._last_full = self._last_freeze = now
        log.info(
            "maintenance collection: %d unreachable objects, %.0f ms pause",
            found,
            self.last_full_pause_s * 1e3,
        )

    async def run(self) -> None:
        """Tick until cancelled (a task of the core)."""
        r = self.runtime
        periods = [p for p in (r.gc_freeze_interval_s, r.gc_full_collect_interval_s) if p]
        if not periods:
            return
        step_s = min(min(periods), 10.0)
        while True:
            await asyncio.sleep(step_s)
            self.tick()
