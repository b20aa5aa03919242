"""Dispatch domain values: requests, session keys, exclusions.

Sign convention: power in W, positive = into the EV (charging), negative = out (discharge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, NamedTuple

__all__ = [
    "MAX_OVERSHOOT_PCT",
    "Algorithm",
    "Direction",
    "DispatchRequest",
    "Exclusion",
    "SessionKey",
    "TrackingMode",
]

Algorithm = Literal["proportional", "merit_order"]
#: "power": the fleet is never commanded beyond the target (plus ``tolerance_pct``); the closed
#: loop only fills under-delivery up to it. "energy": energy behind target may be caught up by
#: commanding up to ``max_overshoot_pct`` above it.
TrackingMode = Literal["power", "energy"]
#: A balancing market counts over-delivery as a deviation: no request may ask for more.
MAX_OVERSHOOT_PCT = 25.0


class Direction(StrEnum):
    DISCHARGE = "discharge"
    CHARGE = "charge"

    @property
    def sign(self) -> float:
        """-1 for discharge (power out of the EV), +1 for charge."""
        return -1.0 if self is Direction.DISCHARGE else 1.0


class SessionKey(NamedTuple):
    """One session: a transaction on an EVSE of a station.

    A NamedTuple rather than a frozen dataclass: built once per session per control period
    (100k sessions: 0.03 s instead of 0.16 s)."""

    station_id: str
    evse_id: int
    transaction_id: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A session left out of a plan, and why (for the operator)."""

    key: SessionKey
    reason: str


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What a grid operator asked for, in W with the house sign convention.

    ``target_w`` is constant over the window unless ``schedule_w`` gives a piecewise-constant
    target (one value per ``schedule_step_s``, same direction; e.g. a regulation signal), in
    which case ``target_w`` is its nominal (largest) magnitude with the direction's sign.
    """

    target_w: float
    start: datetime
    duration_s: float
    algorithm: Algorithm = "proportional"
    headroom: float = 0.9
    region: str | None = None
    site: str | None = None
    schedule_w: tuple[float, ...] = ()
    schedule_step_s: float = 1.0
    tracking: TrackingMode = "power"
    tolerance_pct: float = 0.0  # power mode: commanded may exceed the target by this share
    max_overshoot_pct: float = 10.0  # energy mode: the catch-up may command this much above

    def __post_init__(self) -> None:
        if self.tracking not in ("power", "energy"):
            raise ValueError("tracking must be 'power' or 'energy'")
        for name in ("tolerance_pct", "max_overshoot_pct"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= MAX_OVERSHOOT_PCT):
                raise ValueError(f"{name} must be in [0, {MAX_OVERSHOOT_PCT:g}]")
        if any(not math.isfinite(v) or v * self.target_w < 0 for v in self.schedule_w):
            raise ValueError("schedule_w values must be finite and in target_w's direction")
        if self.schedule_step_s <= 0:
            raise ValueError("schedule_step_s must be > 0")
        if not math.isfinite(self.target_w) or self.target_w == 0:
            raise ValueError("target_w must be finite and non-zero")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError("duration_s must be > 0")
        if not 0 < self.headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    @property
    def direction(self) -> Direction:
        return Direction.DISCHARGE if self.target_w < 0 else Direction.CHARGE

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)

    def target_at(self, t: datetime) -> float:
        """The target in force at ``t`` (signed W)."""
        if not self.schedule_w:
            return self.target_w
        i = int((t - self.start).total_seconds() // self.schedule_step_s)
        return self.schedule_w[min(max(i, 0), len(self.schedule_w) - 1)]

    def least_target_w(self, t0: datetime, t1: datetime) -> float:
        """The smallest target magnitude in force at any time in ``[t0, t1]``."""
        if not self.schedule_w:
            return abs(self.target_w)
        first = int((t0 - self.start).total_seconds() // self.schedule_step_s)
        last = int((t1 - self.start).total_seconds() // self.schedule_step_s)
        n = len(self.schedule_w)
        lo, hi = min(max(first, 0), n - 1), min(max(last, 0), n - 1)
        return min(abs(v) for v in self.schedule_w[lo : hi + 1])

    @property
    def overshoot_frac(self) -> float:
        """How far above the target the fleet may be commanded, as a fraction of it."""
        pct = self.tolerance_pct if self.tracking == "power" else self.max_overshoot_pct
        return pct / 100.0

    def overlaps(self, other: DispatchRequest) -> bool:
        return self.start < other.end and other.start < self.end
