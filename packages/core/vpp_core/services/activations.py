"""A station's frequency activation as its gateway reported it (``FREQUENCY_ACTIVATION``
event over MQTT, ``v2g_common.telemetry.activation``): read and checked (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from v2g_common.telemetry.activation import SeriesPoint, decode_series

__all__ = ["StationActivation", "activation_of"]


@dataclass(frozen=True, slots=True)
class StationActivation:
    """``series``: (t_s from ``started_at``, freq_hz, power_w), measured at the station."""

    station_id: str
    started_at: datetime
    nominal_hz: float
    baseline_w: float
    series: tuple[SeriesPoint, ...]
    truncated: bool

    @property
    def last_s(self) -> float:
        return self.series[-1][0] if self.series else 0.0


def _number(detail: Mapping[str, object], key: str) -> float:
    value = detail.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}: a finite number is needed, got {value!r}")
    return float(value)


def activation_of(station_id: str, detail: Mapping[str, object]) -> StationActivation:
    """The activation an event's ``detail`` describes; ``ValueError`` naming the bad key (an
    older gateway's summary, without the series, is one)."""
    started = detail.get("started_at")
    series = detail.get("series")
    if not isinstance(started, str) or not isinstance(series, str):
        raise ValueError("started_at and series are needed (a gateway from before the report)")
    try:
        started_at = datetime.fromisoformat(started)
    except ValueError:
        raise ValueError(f"started_at: not an ISO 8601 time: {started!r}") from None
    if started_at.tzinfo is None:
        raise ValueError(f"started_at: no UTC offset: {started!r}")
    points = decode_series(series)
    if not points:
        raise ValueError("series: empty")
    baseline = detail.get("baseline_power_w", 0.0)  # absent: nothing was logged before it
    return StationActivation(
        station_id=station_id,
        started_at=started_at,
        nominal_hz=_number(detail, "nominal_hz"),
        baseline_w=_number({"baseline_power_w": baseline}, "baseline_power_w"),
        series=tuple(points),
        truncated=detail.get("series_truncated") is True,
    )
