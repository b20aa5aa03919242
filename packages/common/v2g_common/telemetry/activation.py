"""The ``FREQUENCY_ACTIVATION`` event's detail (issue 19), shared by the gateway that writes it
and the core that judges the response.

The gateway logs frequency and measured power every 100 ms; the event carries that log
thinned to what a settlement report needs, as ``series`` (``t_s,freq_hz,power_w;...``, ``t_s``
from the activation's start): every 100 ms for the first 5 s (the delay and a sub-second full
activation: Dynamic Containment, FFR), every 1 s to 60 s (FCR: 50 % by 15 s, 100 % by
30 s), every 10 s to 20 min (the endurance), then every 60 s, at most :data:`MAX_POINTS`
points (about 8 KB: an event payload is at most 16 KB). ``baseline_power_w`` is the mean
measured power of the samples logged before the start (the ring buffer), ``started_at`` the
start on the gateway's UTC clock. The whole 100 ms file stays on the gateway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "ACTIVATION_EVENT",
    "MAX_POINTS",
    "SeriesPoint",
    "decode_series",
    "encode_series",
    "keep_point",
    "spacing",
]

ACTIVATION_EVENT = "FREQUENCY_ACTIVATION"
MAX_POINTS = 400
#: (up to this offset, keep a point every this many seconds)
_SPACING = ((5.0, 0.1), (60.0, 1.0), (1200.0, 10.0), (math.inf, 60.0))
#: Half a 100 ms sample: a sample this much early still counts as on time (sampling jitter).
_JITTER_S = 0.05
SeriesPoint = tuple[float, float, float]  # t_s, freq_hz, power_w


def spacing(t_s: float) -> float:
    """The series' spacing after a point at ``t_s``."""
    return next(step for until, step in _SPACING if t_s < until)


def keep_point(last_t_s: float | None, t_s: float) -> bool:
    """Whether a sample at ``t_s`` (>= 0) joins a series whose last point is at ``last_t_s``."""
    return last_t_s is None or t_s - last_t_s >= spacing(last_t_s) - _JITTER_S


def encode_series(points: Sequence[SeriesPoint]) -> str:
    return ";".join(f"{t:.2f},{f:.4f},{p:.0f}" for t, f, p in points)


def decode_series(text: str) -> list[SeriesPoint]:
    """The points of ``text``; ``ValueError`` naming the bad point, or when the offsets are not
    strictly ascending from >= 0, or a value is not finite."""
    points: list[SeriesPoint] = []
    for i, item in enumerate(text.split(";") if text else []):
        parts = item.split(",")
        try:
            t, f, p = (float(x) for x in parts)
        except ValueError:
            raise ValueError(f"series point {i}: {item!r} is not t_s,freq_hz,power_w") from None
        if not all(math.isfinite(x) for x in (t, f, p)):
            raise ValueError(f"series point {i}: {item!r} is not finite")
        if t < 0 or (points and t <= points[-1][0]):
            raise ValueError(f"series point {i}: offsets must ascend from 0 ({item!r})")
        points.append((t, f, p))
    return points
