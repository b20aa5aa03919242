"""The frequency-watt curve on its own: interpolation, monotonicity, dead-band, validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2g_gateway.control.frequency import FrequencyCurveError, FreqWattCurve

SETTINGS = settings(max_examples=200, deadline=None)
hz = st.floats(min_value=45.0, max_value=65.0)
watts = st.floats(min_value=-22000.0, max_value=22000.0)


@st.composite
def curves(draw: st.DrawFn, *, monotone: bool = False) -> FreqWattCurve:
    freqs = sorted(draw(st.sets(hz, min_size=2, max_size=20)))
    powers = draw(st.lists(watts, min_size=len(freqs), max_size=len(freqs)))
    if monotone:
        powers.sort()
    return FreqWattCurve(tuple(freqs), tuple(powers))


@st.composite
def curves_with_deadband(draw: st.DrawFn) -> FreqWattCurve:
    """A droop: discharge below the band, 0 W inside it, charge above (the usual FCR shape)."""
    low, high = sorted(draw(st.sets(st.floats(49.0, 51.0), min_size=2, max_size=2)))
    under = draw(st.floats(min_value=-22000.0, max_value=-1.0))
    over = draw(st.floats(min_value=1.0, max_value=22000.0))
    return FreqWattCurve((low - 0.5, low, high, high + 0.5), (under, 0.0, 0.0, over))


@SETTINGS
@given(curve=curves())
def test_the_curve_passes_through_its_points(curve: FreqWattCurve) -> None:
    for freq, power in zip(curve.freq_hz, curve.power_w, strict=True):
        assert curve.value_w(freq) == power


@SETTINGS
@given(curve=curves(), freq=st.floats(min_value=40.0, max_value=70.0))
def test_each_value_lies_on_its_segment_and_ends_are_held(
    curve: FreqWattCurve, freq: float
) -> None:
    value = curve.value_w(freq)
    if freq <= curve.freq_hz[0]:
        assert value == curve.power_w[0]
    elif freq >= curve.freq_hz[-1]:
        assert value == curve.power_w[-1]
    else:
        points = zip(curve.freq_hz, curve.power_w, strict=True)
        for (f0, p0), (f1, p1) in itertools.pairwise(points):
            if f0 <= freq <= f1:
                assert min(p0, p1) - 1e-9 <= value <= max(p0, p1) + 1e-9
                expected = p0 + (p1 - p0) * (freq - f0) / (f1 - f0)
                assert value == pytest.approx(expected, abs=1e-6)
                break


@SETTINGS
@given(curve=curves(monotone=True), pair=st.tuples(hz, hz))
def test_monotone_curve_gives_monotone_response(
    curve: FreqWattCurve, pair: tuple[float, float]
) -> None:
    low, high = sorted(pair)
    assert curve.value_w(low) <= curve.value_w(high)


@SETTINGS
@given(curve=curves_with_deadband(), where=st.floats(min_value=0.0, max_value=1.0))
def test_no_response_inside_the_deadband(curve: FreqWattCurve, where: float) -> None:
    band = curve.deadband_hz()
    assert band == (curve.freq_hz[1], curve.freq_hz[2])
    freq = min(band[0] + where * (band[1] - band[0]), band[1])
    assert curve.value_w(freq) == 0.0


def test_deadband_is_the_widest_run_of_zero_points() -> None:
    curve = FreqWattCurve.from_points(
        [(49.0, -5000.0), (49.5, 0.0), (49.6, 0.0), (49.7, 100.0), (49.9, 0.0), (50.1, 0.0)]
    )
    assert curve.deadband_hz() == (49.9, 50.1)
    assert FreqWattCurve.from_points([(49.0, -1.0), (50.0, 0.0), (51.0, 1.0)]).deadband_hz() is None


@pytest.mark.parametrize(
    ("freqs", "powers", "reason"),
    [
        ((50.0,), (0.0,), "2..20 points"),
        (tuple(49.0 + i * 0.1 for i in range(21)), (0.0,) * 21, "2..20 points"),
        ((50.0, 49.0), (0.0, 1.0), "strictly ascending"),
        ((50.0, 50.0), (0.0, 1.0), "strictly ascending"),
        ((49.0, float("nan")), (0.0, 1.0), "finite"),
        ((49.0, 50.0), (0.0, float("inf")), "finite"),
        ((0.0, 50.0), (0.0, 1.0), "> 0 Hz"),
        ((49.0, 50.0), (0.0,), "as many powers"),
    ],
)
def test_a_curve_the_law_cannot_execute_is_refused_with_its_reason(
    freqs: tuple[float, ...], powers: tuple[float, ...], reason: str
) -> None:
    with pytest.raises(FrequencyCurveError, match=reason):
        FreqWattCurve(freqs, powers)
