"""PJM-style regulation performance score (after PJM Manual 12, section 4.5), pure.

For a signal and the measured response sampled at the same fixed interval:
- accuracy: the highest correlation between signal and the response delayed by 0..5 min;
- delay: ``1 - delta / 5 min`` for the delay ``delta`` at which that correlation peaks;
- precision: ``1 - mean(|response - signal|) / mean(|signal|)`` (floored at 0);
- composite: the mean of the three.

A constant signal (a plain MW dispatch) has no shape to correlate with: accuracy and delay are
undefined there (None, not a made-up 0 or 1), and the composite is the precision alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PerformanceScore", "performance_score"]

MAX_DELAY_S = 300.0


@dataclass(frozen=True, slots=True)
class PerformanceScore:
    accuracy: float | None  # None: constant signal
    delay: float | None  # None: constant signal
    precision: float
    composite: float
    delay_s: float | None


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def performance_score(
    signal: npt.ArrayLike, response: npt.ArrayLike, *, sample_s: float, step_s: float = 10.0
) -> PerformanceScore:
    """Score ``response`` against ``signal`` (same units, same sampling); delays in ``step_s``."""
    sig = np.asarray(signal, dtype=np.float64)
    res = np.asarray(response, dtype=np.float64)
    if sig.shape != res.shape or sig.size < 3:
        raise ValueError("signal and response need the same length (>= 3 samples)")
    scale = float(np.mean(np.abs(sig))) or 1.0
    precision = max(0.0, 1.0 - float(np.mean(np.abs(res - sig))) / scale)
    if np.ptp(sig) == 0:
        return PerformanceScore(None, None, precision, precision, None)
    best_corr, best_delay_s = -1.0, 0.0
    max_shift = min(int(MAX_DELAY_S / sample_s), sig.size - 2)
    for shift in range(0, max_shift + 1, max(1, round(step_s / sample_s))):
        c = _corr(sig[: sig.size - shift], res[shift:])
        if c > best_corr + 1e-12:
            best_corr, best_delay_s = c, shift * sample_s
    accuracy = max(best_corr, 0.0)
    delay = abs((best_delay_s - MAX_DELAY_S) / MAX_DELAY_S)
    return PerformanceScore(
        accuracy=accuracy,
        delay=delay,
        precision=precision,
        composite=(accuracy + delay + precision) / 3.0,
        delay_s=best_delay_s,
    )
