"""A site's grid frequency for the simulator: steps, ramps, a replayed trace and noise, as a
pure function of simulated time (the power modules of a site share one source and report it
in their SunSpec ``Hz`` point).

The schedule is a piecewise-linear timeline of ``(t_s, freq_hz)`` points: before the first
the frequency is ``nominal_hz``, after the last it holds; two points at the same time make a
step; a replayed trace (10 Hz or faster) is just its samples. ``step``, ``ramp`` and
``replay`` return a new source in which the event replaces whatever was scheduled from its
start on (the rest of a ramp or trace), so a command "from now" always wins. Noise is
Gaussian, deterministic for a seed, drawn per ``noise_period_s`` bucket of time so a given
instant always reads the same value.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace

__all__ = ["GridFrequency", "parse_trace_csv"]


@dataclass(frozen=True, slots=True)
class GridFrequency:
    nominal_hz: float = 50.0
    times_s: tuple[float, ...] = ()
    freqs_hz: tuple[float, ...] = ()
    noise_hz: float = 0.0
    noise_period_s: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.times_s) != len(self.freqs_hz):
            raise ValueError("as many frequencies as times are needed")
        values = (self.nominal_hz, *self.times_s, *self.freqs_hz, self.noise_hz)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("grid frequency values must be finite")
        if self.nominal_hz <= 0 or any(f <= 0 for f in self.freqs_hz):
            raise ValueError("frequencies must be > 0 Hz")
        if any(b < a for a, b in itertools.pairwise(self.times_s)):
            raise ValueError("grid frequency points must be in time order")
        if self.noise_hz < 0 or self.noise_period_s <= 0:
            raise ValueError("noise_hz must be >= 0 and noise_period_s > 0")

    def freq_hz(self, t_s: float) -> float:
        """The frequency at simulated time ``t_s``, noise included."""
        return self.scheduled_hz(t_s) + self._noise_hz(t_s)

    def scheduled_hz(self, t_s: float) -> float:
        """The frequency at ``t_s`` without noise."""
        times, freqs = self.times_s, self.freqs_hz
        i = bisect.bisect_right(times, t_s) - 1  # the last point at or before t_s
        if i < 0:
            return self.nominal_hz
        if i == len(times) - 1:
            return freqs[i]
        t0, t1 = times[i], times[i + 1]
        return freqs[i] + (freqs[i + 1] - freqs[i]) * (t_s - t0) / (t1 - t0)

    def step(self, *, at_s: float, to_hz: float) -> GridFrequency:
        """Jump to ``to_hz`` at ``at_s`` and stay there."""
        return self._append([(at_s, self.scheduled_hz(at_s)), (at_s, to_hz)])

    def ramp(self, *, at_s: float, to_hz: float, over_s: float) -> GridFrequency:
        """Move linearly from the frequency at ``at_s`` to ``to_hz`` over ``over_s``."""
        if not over_s > 0:
            raise ValueError("a ramp takes over_s > 0 (use step for a jump)")
        return self._append([(at_s, self.scheduled_hz(at_s)), (at_s + over_s, to_hz)])

    def replay(self, samples: Iterable[tuple[float, float]], *, at_s: float) -> GridFrequency:
        """Follow a recorded trace (``(t_s from its start, freq_hz)``) from ``at_s`` on."""
        points = [(at_s + t, f) for t, f in samples]
        if not points:
            raise ValueError("an empty trace")
        return self._append([(at_s, self.scheduled_hz(at_s)), *points])

    def _append(self, points: list[tuple[float, float]]) -> GridFrequency:
        keep = bisect.bisect_left(self.times_s, points[0][0])  # drop what is scheduled later
        return replace(
            self,
            times_s=self.times_s[:keep] + tuple(t for t, _ in points),
            freqs_hz=self.freqs_hz[:keep] + tuple(f for _, f in points),
        )

    def _noise_hz(self, t_s: float) -> float:
        if self.noise_hz == 0.0:
            return 0.0
        bucket = math.floor(t_s / self.noise_period_s)
        return random.Random(f"{self.seed}:{bucket}").gauss(0.0, self.noise_hz)


def parse_trace_csv(text: str) -> list[tuple[float, float]]:
    """``t_s,freq_hz`` rows (a header line without numbers is skipped); times ascending."""
    rows: list[tuple[float, float]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].strip().startswith("#"):
            continue
        try:
            t_s, freq = float(row[0]), float(row[1])
        except (ValueError, IndexError):
            if number == 1:
                continue  # header
            raise ValueError(f"trace line {number}: expected t_s,freq_hz, got {row!r}") from None
        if rows and t_s < rows[-1][0]:
            raise ValueError(f"trace line {number}: time {t_s} s goes backwards")
        rows.append((t_s, freq))
    if not rows:
        raise ValueError("the trace has no samples")
    return rows
