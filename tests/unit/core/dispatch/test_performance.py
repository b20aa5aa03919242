"""PJM-style score: perfect, delayed, scaled and unrelated responses."""

from __future__ import annotations

import numpy as np
import pytest

from vpp_core.dispatch.performance import performance_score

T = np.arange(0, 1800, 2.0)
SIGNAL = np.sin(T / 120.0) + 0.5 * np.sin(T / 37.0)


def test_perfect_response_scores_one() -> None:
    s = performance_score(SIGNAL, SIGNAL, sample_s=2.0)
    assert (s.accuracy, s.delay, s.precision, s.composite) == pytest.approx((1.0, 1.0, 1.0, 1.0))


def test_delayed_response_is_found_at_its_delay() -> None:
    delayed = np.concatenate([np.zeros(15), SIGNAL[:-15]])  # 30 s late
    s = performance_score(SIGNAL, delayed, sample_s=2.0, step_s=2.0)
    assert s.delay_s == 30.0
    assert s.delay == pytest.approx(0.9)
    assert s.accuracy > 0.99
    assert s.precision < 0.9


def test_half_response_loses_precision_not_accuracy() -> None:
    s = performance_score(SIGNAL + 3.0, 0.5 * SIGNAL + 3.0, sample_s=2.0)
    assert s.accuracy == pytest.approx(1.0)
    assert 0.7 < s.precision < 1.0


def test_noise_scores_low() -> None:
    noise = np.random.default_rng(1).normal(size=SIGNAL.size)
    assert performance_score(SIGNAL, noise, sample_s=2.0).composite < 0.6


def test_a_constant_signal_is_scored_on_precision_alone() -> None:
    """Nothing to correlate with: accuracy and delay are undefined, not 0 or 1."""
    s = performance_score([100.0] * 10, [100.0] * 5 + [90.0] * 5, sample_s=5.0)
    assert (s.accuracy, s.delay, s.delay_s) == (None, None, None)
    assert s.precision == pytest.approx(0.95)
    assert s.composite == s.precision


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="same length"):
        performance_score([1, 2, 3], [1, 2], sample_s=1.0)
