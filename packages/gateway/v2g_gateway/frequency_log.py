"""The activation log of frequency response (issue 19): a ring buffer of 100 ms samples
(grid frequency, commanded setpoint, measured power) and the windows an activation keeps.

An *activation* starts at the first sample whose frequency is more than ``deadband_hz`` from
``nominal_hz``. Its record holds the ``before_s`` of samples that preceded it (the ring
buffer) and every sample until ``after_s`` past the last sample outside the band. A new
excursion inside that window extends the same activation. Pure: the caller feeds samples
and writes what :meth:`ActivationRecorder.add` hands back (see
:mod:`v2g_gateway.frequency_log_service`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from v2g_common.telemetry.activation import MAX_POINTS as MAX_SERIES_POINTS
from v2g_common.telemetry.activation import SeriesPoint, encode_series, keep_point

__all__ = ["ActivationRecorder", "ActivationSummary", "FrequencySample", "Recorded"]


@dataclass(frozen=True, slots=True)
class FrequencySample:
    """One 100 ms sample; ``t_s`` on the supervisor's monotonic clock."""

    t_s: float
    freq_hz: float
    setpoint_w: float
    power_w: float


@dataclass(slots=True)
class ActivationSummary:
    """What an activation was: the event and its record's summary, with the response series
    the core's report judges (``v2g_common.telemetry.activation``): the samples from the
    start thinned, and the mean power of the samples before it."""

    started_s: float
    ended_s: float = math.nan
    samples: int = 0
    min_freq_hz: float = math.inf
    max_freq_hz: float = -math.inf
    min_power_w: float = math.inf
    max_power_w: float = -math.inf
    series: list[SeriesPoint] = field(default_factory=list, init=False, repr=False)
    series_truncated: bool = field(default=False, init=False)
    _before_w: list[float] = field(default_factory=list, init=False, repr=False)

    @property
    def baseline_power_w(self) -> float:
        """Mean measured power before the start (NaN when nothing was logged before it)."""
        return math.fsum(self._before_w) / len(self._before_w) if self._before_w else math.nan

    def figures(self) -> dict[str, float | str | bool]:
        """The summary as the event's detail: finite figures only, the series encoded."""
        values: dict[str, float | str | bool] = {
            name: v
            for name in ("started_s", "ended_s", "samples", "min_freq_hz", "max_freq_hz",
                         "min_power_w", "max_power_w", "baseline_power_w")
            if math.isfinite(v := float(getattr(self, name)))
        }  # fmt: skip
        values["series"] = encode_series(self.series)
        values["series_truncated"] = self.series_truncated
        return values

    def include(self, s: FrequencySample) -> None:
        self._add_to_series(s)
        self.samples += 1
        self.min_freq_hz = min(self.min_freq_hz, s.freq_hz)
        self.max_freq_hz = max(self.max_freq_hz, s.freq_hz)
        self.min_power_w = min(self.min_power_w, s.power_w)
        self.max_power_w = max(self.max_power_w, s.power_w)

    def _add_to_series(self, s: FrequencySample) -> None:
        t = s.t_s - self.started_s
        if t < 0:
            self._before_w.append(s.power_w)
        elif keep_point(self.series[-1][0] if self.series else None, t):
            if len(self.series) < MAX_SERIES_POINTS:
                self.series.append((t, s.freq_hz, s.power_w))
            else:
                self.series_truncated = True


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one :meth:`ActivationRecorder.add` asks the caller to do: ``started`` opens a
    record, ``write`` appends to it, ``finished`` closes it."""

    started: ActivationSummary | None = None
    write: tuple[FrequencySample, ...] = ()
    finished: ActivationSummary | None = None


_NOTHING = Recorded()
#: The band's edge belongs to the band (50.015 - 50.0 is 0.0150000000000006 in binary).
_EDGE_HZ = 1e-9


@dataclass
class ActivationRecorder:
    nominal_hz: float = 50.0
    deadband_hz: float = 0.015
    before_s: float = 10.0
    after_s: float = 900.0
    sample_period_s: float = 0.1
    _ring: deque[FrequencySample] = field(init=False)
    _active: ActivationSummary | None = field(init=False, default=None)
    _last_outside_s: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        if not (self.deadband_hz >= 0 and self.before_s >= 0 and self.after_s > 0):
            raise ValueError("deadband_hz >= 0, before_s >= 0 and after_s > 0 are needed")
        self._ring = deque(maxlen=max(1, round(self.before_s / self.sample_period_s)))

    @property
    def active(self) -> bool:
        return self._active is not None

    def add(self, s: FrequencySample) -> Recorded:
        """Feed one sample (in time order)."""
        offset_hz = abs(s.freq_hz - self.nominal_hz)
        outside = math.isfinite(offset_hz) and offset_hz > self.deadband_hz + _EDGE_HZ
        if outside:
            self._last_outside_s = s.t_s
        active = self._active
        if active is None:
            if not outside:
                self._ring.append(s)
                return _NOTHING
            active = self._active = ActivationSummary(started_s=s.t_s)
            before = (*self._ring, s)
            self._ring.clear()
            for sample in before:
                active.include(sample)
            return Recorded(started=active, write=before)
        active.include(s)
        if s.t_s - self._last_outside_s < self.after_s:
            return Recorded(write=(s,))
        active.ended_s = s.t_s
        self._active = None
        return Recorded(write=(s,), finished=active)
