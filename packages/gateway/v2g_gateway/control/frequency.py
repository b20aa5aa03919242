"""The frequency-watt law of OCPP 2.1 ``LocalFrequency``: a piecewise-linear curve from the
locally measured grid frequency (Hz) to power (W, positive = into the EV), added to the
period's ``v2xBaseline``. Pure: no clock, no I/O, no clamping (the control law bounds the sum
by the EV's, the module's and the site's limits and the SoC window, as it does any setpoint).

The curve is held flat beyond its first and last points (a frequency past the curve asks for
no more than its end value). Its *dead-band* is the run of consecutive points whose power is
0 W: between them the interpolation is exactly 0 W, so measurement noise around the nominal
frequency moves nothing.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

__all__ = [
    "MAX_POINTS",
    "MIN_POINTS",
    "FreqWattCurve",
    "FrequencyCurveError",
    "check_points",
    "piecewise_value",
]

#: OCPP 2.1 ``v2xFreqWattCurve``: 1..20 items in the schema; LocalFrequency needs >= 2.
MIN_POINTS = 2
MAX_POINTS = 20


class FrequencyCurveError(ValueError):
    """A curve the law cannot execute (point count, order, non-finite values)."""


def check_points(xs: tuple[float, ...], powers_w: tuple[float, ...], *, axis: str) -> None:
    """Raise :class:`FrequencyCurveError` unless ``(xs[i], powers_w[i])`` is an executable
    OCPP 2.1 watt curve: 2..20 points, finite values, ``xs`` strictly ascending."""
    n = len(xs)
    if n != len(powers_w):
        raise FrequencyCurveError(f"as many powers as {axis} are needed")
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise FrequencyCurveError(f"a curve has {MIN_POINTS}..{MAX_POINTS} points, not {n}")
    if not all(math.isfinite(v) for v in (*xs, *powers_w)):
        raise FrequencyCurveError("curve values must be finite")
    if any(b <= a for a, b in itertools.pairwise(xs)):
        raise FrequencyCurveError(f"{axis} must be strictly ascending")


def piecewise_value(xs: tuple[float, ...], powers_w: tuple[float, ...], x: float) -> float:
    """The piecewise-linear curve through ``(xs[i], powers_w[i])`` at ``x``, held at its end
    values beyond the first and last points; a flat segment gives its value exactly."""
    if x <= xs[0]:
        return powers_w[0]
    if x >= xs[-1]:
        return powers_w[-1]
    i = bisect.bisect_right(xs, x)  # xs[i-1] <= x < xs[i]
    x0, x1, p0, p1 = xs[i - 1], xs[i], powers_w[i - 1], powers_w[i]
    if p0 == p1:  # flat segment (the dead-band among them): exact, no rounding
        return p0
    return p0 + (p1 - p0) * (x - x0) / (x1 - x0)


@dataclass(frozen=True, slots=True)
class FreqWattCurve:
    """Points ``(freq_hz[i], power_w[i])``; frequencies strictly ascending."""

    freq_hz: tuple[float, ...]
    power_w: tuple[float, ...]

    def __post_init__(self) -> None:
        check_points(self.freq_hz, self.power_w, axis="frequencies")
        if self.freq_hz[0] <= 0:
            raise FrequencyCurveError("frequencies must be > 0 Hz")

    @classmethod
    def from_points(cls, points: list[tuple[float, float]]) -> FreqWattCurve:
        """From ``[(freq_hz, power_w), ...]`` in curve order."""
        return cls(tuple(f for f, _ in points), tuple(p for _, p in points))

    def value_w(self, freq_hz: float) -> float:
        """The curve's power at ``freq_hz`` (held at the end values beyond the curve)."""
        return piecewise_value(self.freq_hz, self.power_w, freq_hz)

    def deadband_hz(self) -> tuple[float, float] | None:
        """``(low, high)`` of the widest run of consecutive 0 W points, or ``None``."""
        best: tuple[float, float] | None = None
        start: int | None = None
        for i, power in enumerate((*self.power_w, math.nan)):  # NaN closes a trailing run
            if power == 0.0:
                start = i if start is None else start
                continue
            if start is not None and i - 1 > start:
                run = (self.freq_hz[start], self.freq_hz[i - 1])
                if best is None or run[1] - run[0] > best[1] - best[0]:
                    best = run
            start = None
        return best

    @property
    def span_w(self) -> float:
        """The largest change the curve can ask for between two frequencies."""
        return max(self.power_w) - min(self.power_w)
