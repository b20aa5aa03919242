"""Real-time helpers for the control process: absolute sleeps on CLOCK_MONOTONIC, SCHED_FIFO,
mlockall and a lateness histogram that records without allocating containers.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import gc
import os
import time
from array import array

__all__ = [
    "LatenessStats",
    "PreciseSleeper",
    "apply_realtime",
    "collect_young",
    "freeze_heap",
    "thaw_heap",
]

_CLOCK_MONOTONIC = 1
_TIMER_ABSTIME = 1
_MCL_CURRENT = 1
_MCL_FUTURE = 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


class PreciseSleeper:
    """Waits for absolute ``time.monotonic()`` deadlines: the event loop sleeps the coarse
    part (so I/O callbacks still run), ``clock_nanosleep(TIMER_ABSTIME)`` the last
    ``fine_s`` (epoll only has millisecond resolution)."""

    def __init__(self, *, fine_s: float = 0.002) -> None:
        self._fine_s = fine_s
        self._libc = _libc()
        self._ts = _Timespec()
        self._nanosleep = None if self._libc is None else self._libc.clock_nanosleep
        self._ref = ctypes.byref(self._ts)

    async def wait_until(self, deadline_s: float) -> None:
        remaining = deadline_s - time.monotonic()
        if remaining > self._fine_s:
            await asyncio.sleep(remaining - self._fine_s)
        self.block_until(deadline_s)

    def block_until(self, deadline_s: float) -> None:
        if self._nanosleep is None:
            remaining = deadline_s - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
            return
        seconds = int(deadline_s)
        self._ts.tv_sec = seconds
        self._ts.tv_nsec = int((deadline_s - seconds) * 1e9)
        while self._nanosleep(_CLOCK_MONOTONIC, _TIMER_ABSTIME, self._ref, None) == errno.EINTR:
            pass


def apply_realtime(*, priority: int, lock_memory: bool) -> list[str]:
    """Best effort SCHED_FIFO at ``priority`` (0 = leave the scheduler alone) and
    ``mlockall``; returns what could not be applied, for the start-up log."""
    problems: list[str] = []
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (OSError, AttributeError) as exc:
            problems.append(f"SCHED_FIFO {priority} not applied: {exc}")
    if lock_memory:
        libc = _libc()
        if libc is None or libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            problems.append(f"mlockall not applied: {os.strerror(err) if err else 'no libc'}")
    return problems


def freeze_heap() -> None:
    """Collect once, move everything to the permanent generation and stop automatic cyclic
    GC: reference counting frees what the loop body makes; the few cycles that drivers
    create (exceptions, futures) are collected by :func:`collect_young` at a planned point."""
    gc.collect()
    gc.freeze()
    gc.disable()


def collect_young() -> None:
    """A planned collection of the young generations (cheap: the start-up heap is frozen);
    the loop calls it right after a cycle, when the next deadline is furthest away."""
    gc.collect(1)


def thaw_heap() -> None:
    """Undo :func:`freeze_heap` (the loop ended; matters when it ran inside a test)."""
    gc.unfreeze()
    gc.enable()


class LatenessStats:
    """Lateness histogram with 10 µs bins up to 50 ms (plus overflow), exact maximum, and
    p50/p99 recomputed on demand by scanning the bins."""

    BIN_US = 10.0
    BINS = 5000

    def __init__(self) -> None:
        self._bins = array("q", bytes(8 * (self.BINS + 1)))
        self.count = 0
        self.max_us = 0.0
        self.p50_us = 0.0
        self.p99_us = 0.0

    def record(self, lateness_s: float) -> None:
        us = lateness_s * 1e6 if lateness_s > 0 else 0.0
        index = int(us / self.BIN_US)
        self._bins[index if index < self.BINS else self.BINS] += 1
        self.count += 1
        if us > self.max_us:
            self.max_us = us

    def update_percentiles(self) -> None:
        if self.count == 0:
            return
        p50_rank = self.count * 0.50
        p99_rank = self.count * 0.99
        seen = 0
        p50_done = False
        for index in range(self.BINS + 1):
            seen += self._bins[index]
            if not p50_done and seen >= p50_rank:
                self.p50_us = min((index + 0.5) * self.BIN_US, self.max_us)
                p50_done = True
            if seen >= p99_rank:
                self.p99_us = min((index + 0.5) * self.BIN_US, self.max_us)
                return
