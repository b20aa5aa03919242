"""What an activation's summary carries to the core's report: the 100 ms log thinned (every
100 ms for 5 s, 1 s to 60 s, 10 s after), the mean power before the start, the start on the
UTC clock, all within an MQTT event's size (issue 19)."""

from __future__ import annotations

import json
import math

import pytest

from v2g_common.telemetry import SiteEvent
from v2g_common.telemetry.activation import MAX_POINTS, decode_series, encode_series
from v2g_common.telemetry.payloads import MAX_PAYLOAD_BYTES
from v2g_gateway.frequency_log import ActivationRecorder, ActivationSummary, FrequencySample


def run(seconds_after: float, *, before_w: float = 300.0) -> ActivationSummary:
    """10 s at 50 Hz drawing ``before_w``, then 49.8 Hz for ``seconds_after`` with the power
    going to -5 kW, then back in the band until the activation ends."""
    recorder = ActivationRecorder(before_s=10.0, after_s=5.0)
    k, finished = 0, None
    while finished is None:
        t = k / 10
        inside = t < 10.0 or t >= 10.0 + seconds_after
        f, p = (50.0, before_w) if inside else (49.8, -5000.0)
        finished = recorder.add(FrequencySample(t, f, p, p)).finished
        k += 1
    return finished


def test_the_series_is_thinned_to_100_ms_then_1_s_then_10_s() -> None:
    summary = run(120.0)
    offsets = [round(t, 2) for t, _, _ in summary.series]
    assert offsets[:51] == [round(0.1 * i, 2) for i in range(51)]  # 0 to 5 s every 100 ms
    assert offsets[51:56] == [6.0, 7.0, 8.0, 9.0, 10.0]
    assert offsets[106:109] == [70.0, 80.0, 90.0]
    assert summary.series[0][1:] == (49.8, -5000.0)
    assert summary.baseline_power_w == pytest.approx(300.0)
    assert summary.series_truncated is False


def test_the_summary_round_trips_through_the_event_and_fits_in_it() -> None:
    summary = run(5 * 3600.0)  # a five-hour excursion: the series stops at MAX_POINTS
    figures = summary.figures()
    assert figures["series_truncated"] is True
    assert all(math.isfinite(v) for v in figures.values() if isinstance(v, float))
    event = SiteEvent(
        site="s", region="r", stream="x", seq=1, at="2026-12-03T14:00:00Z",
        code="FREQUENCY_ACTIVATION", severity="info", charger="s",
        detail={**figures, "started_at": "2026-12-03T14:00:00+00:00", "file": "a.csv"},
    )  # type: ignore[arg-type]  # fmt: skip
    assert len(event.model_dump_json(by_alias=True)) < MAX_PAYLOAD_BYTES
    points = decode_series(str(figures["series"]))
    assert len(points) == MAX_POINTS
    assert points == [(round(t, 2), f, round(p)) for t, f, p in summary.series]


@pytest.mark.parametrize(
    ("text", "why"),
    [("0,50,1;x", "not t_s"), ("1,50,1;0.5,50,1", "ascend"), ("0,nan,1", "finite"),
     ("-1,50,1", "ascend"), ("0,50", "not t_s")],
)  # fmt: skip
def test_a_bad_series_is_refused_naming_the_point(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode_series(text)


def test_encoding_keeps_two_decimals_of_time_and_four_of_frequency() -> None:
    assert encode_series([(0.1, 49.81234, -4999.6)]) == "0.10,49.8123,-5000"
    assert json.dumps(decode_series("0.10,49.8123,-5000")) == "[[0.1, 49.8123, -5000.0]]"
