"""What changed in the live fleet since the last database write (the write-behind queue).

Live records are tracked by key only: a write takes the records' *current* values, so many
changes to one session between two writes cost one row. Append-only facts (samples, command
results, security events, reported profiles) are queued as rows, bounded: past
``max_queued_rows`` the oldest samples are dropped and counted (the registers and SoC they
carried are cumulative/absolute and come back with the next report). A batch merged back
after a failed write keeps that bound too: samples go first, then reported profiles (the
station is re-read), then command results and security events; every dropped row is counted
per table (``dropped``, cumulative, carried from one queue to the next by the write-behind).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PendingWrites"]

Row = dict[str, Any]


@dataclass
class PendingWrites:
    stations: set[str] = field(default_factory=set)
    evses: set[tuple[str, int]] = field(default_factory=set)
    sessions: set[tuple[str, str]] = field(default_factory=set)
    samples: deque[Row] = field(default_factory=deque)
    profiles: list[Row] = field(default_factory=list)
    commands: list[Row] = field(default_factory=list)
    security_events: list[Row] = field(default_factory=list)
    #: Monotonic time of the oldest change not yet written (None = nothing pending).
    oldest_change_s: float | None = None
    #: A change that a crash must not lose (transaction start/end, charging needs, boot…).
    urgent: bool = False
    #: Rows dropped to stay within ``max_queued_rows``, by batch field (``"samples"``…).
    dropped: Counter[str] = field(default_factory=Counter)
    #: Called on an urgent change (the write-behind wakes up at once).
    on_urgent: Callable[[], None] | None = None

    def touch(self, *, urgent: bool = False) -> None:
        if self.oldest_change_s is None:
            self.oldest_change_s = time.monotonic()
        if urgent and not self.urgent:
            self.urgent = True
            if self.on_urgent is not None:
                self.on_urgent()

    @property
    def dropped_samples(self) -> int:
        return self.dropped["samples"]

    def add_sample(self, row: Row, *, max_queued_rows: int) -> None:
        if len(self.samples) >= max_queued_rows:
            self.samples.popleft()
            self.dropped["samples"] += 1
        self.samples.append(row)
        self.touch()

    def size(self) -> int:
        return (
            len(self.stations)
            + len(self.evses)
            + len(self.sessions)
            + len(self.samples)
            + len(self.profiles)
            + len(self.commands)
            + len(self.security_events)
        )

    def merge_back(self, failed: PendingWrites, *, max_queued_rows: int) -> None:
        """Put a batch that could not be written back in front of newer changes."""
        self.stations |= failed.stations
        self.evses |= failed.evses
        self.sessions |= failed.sessions
        self.samples.extendleft(reversed(failed.samples))
        self.profiles[:0] = failed.profiles
        self.commands[:0] = failed.commands
        self.security_events[:0] = failed.security_events
        self.urgent = self.urgent or failed.urgent
        self.dropped += failed.dropped
        if failed.oldest_change_s is not None:
            mine = self.oldest_change_s
            self.oldest_change_s = (
                min(mine, failed.oldest_change_s) if mine else failed.oldest_change_s
            )
        self._bound(max_queued_rows)

    def _bound(self, max_queued_rows: int) -> None:
        """Drop the oldest append-only rows beyond ``max_queued_rows``, least valuable first."""
        excess = (
            len(self.samples)
            + len(self.profiles)
            + len(self.commands)
            + len(self.security_events)
            - max_queued_rows
        )
        if excess <= 0:
            return
        drop = min(excess, len(self.samples))
        if drop:
            for _ in range(drop):
                self.samples.popleft()
            self.dropped["samples"] += drop
            excess -= drop
        for name in ("profiles", "commands", "security_events"):
            rows: list[Row] = getattr(self, name)
            drop = min(excess, len(rows))
            if drop:
                del rows[:drop]
                self.dropped[name] += drop
                excess -= drop
