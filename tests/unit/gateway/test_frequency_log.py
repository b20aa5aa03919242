"""The activation log: the 100 ms ring buffer, what an activation keeps (10 s before to
``after_s`` past the last excursion) and the files the supervisor service writes."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from v2g_gateway.control.wire import NO_SNAPSHOT, ControlSnapshot
from v2g_gateway.frequency_log import ActivationRecorder, FrequencySample
from v2g_gateway.frequency_log_service import FrequencyLogSection, FrequencyLogService


def sample(k: int, freq_hz: float) -> FrequencySample:
    """Sample ``k`` at ``k`` x 100 ms; power follows a droop of 10 kW per 0.5 Hz."""
    return FrequencySample(k / 10, freq_hz, (freq_hz - 50.0) * 20000.0, (freq_hz - 50.0) * 19000.0)


def feed(recorder: ActivationRecorder, freqs: list[float]) -> list[tuple[str, int, int]]:
    """(what happened, at sample k, samples written) for every sample that did something."""
    seen = []
    for k, f in enumerate(freqs):
        out = recorder.add(sample(k, f))
        if out.started:
            seen.append(("started", k, len(out.write)))
        elif out.finished:
            seen.append(("finished", k, out.finished.samples))
    return seen


def test_an_activation_keeps_the_ten_seconds_before_it_and_ends_after_the_last_excursion() -> None:
    recorder = ActivationRecorder(before_s=10.0, after_s=5.0)
    freqs = [50.0] * 300 + [49.5] * 20 + [50.0] * 100
    # 100 samples before + the first outside; ends 5 s (50 samples) after the last at 319.
    assert feed(recorder, freqs) == [("started", 300, 101), ("finished", 369, 101 + 69)]


def test_no_activation_inside_the_deadband_nor_for_an_unknown_frequency() -> None:
    recorder = ActivationRecorder(deadband_hz=0.015)
    assert feed(recorder, [50.0, 50.015, 49.985, math.nan, 50.01] * 100) == []


def test_a_second_excursion_within_after_s_extends_the_same_activation() -> None:
    recorder = ActivationRecorder(before_s=1.0, after_s=2.0)
    freqs = [50.0] * 20 + [50.2] * 5 + [50.0] * 15 + [49.8] * 5 + [50.0] * 30
    seen = feed(recorder, freqs)
    assert seen == [("started", 20, 11), ("finished", 64, 11 + 44)]


def test_summary_says_the_range_of_frequency_and_power() -> None:
    recorder = ActivationRecorder(before_s=0.5, after_s=1.0)
    finished = None
    for k, f in enumerate([50.0] * 10 + [49.6, 49.5, 49.7] + [50.0] * 20):
        finished = recorder.add(sample(k, f)).finished or finished
    assert finished is not None
    assert (finished.min_freq_hz, finished.max_freq_hz) == (49.5, 50.0)
    assert finished.min_power_w == pytest.approx(-9500.0)
    assert finished.started_s == pytest.approx(1.0)


def snapshot(t_s: float, freq_hz: float, power_w: float) -> ControlSnapshot:
    return replace(
        NO_SNAPSHOT,
        monotonic_s=t_s,
        grid_freq_hz=freq_hz,
        commanded_w=power_w,
        power_w=power_w,
        cycles=1,
    )


class FakeChannel:
    def __init__(self) -> None:
        self.latest = snapshot(0.0, 50.0, 0.0)

    def snapshot(self) -> ControlSnapshot:
        return self.latest


class ScriptedTime:
    """The service's clock and pacing, driven by the service itself: each ``wait_until``
    jumps to its deadline and shows the next scripted snapshot (no real time passes); after
    the script the service waits for ever (the test cancels it)."""

    def __init__(self, channel: FakeChannel, freqs: list[float]) -> None:
        self.now_s = 0.0
        self.channel = channel
        self.freqs = freqs
        self.done = asyncio.Event()

    def clock(self) -> float:
        return self.now_s

    async def wait_until(self, deadline_s: float) -> None:
        self.now_s = deadline_s
        k = round(deadline_s * 10) - 1
        if k >= len(self.freqs):
            self.done.set()
            await asyncio.Event().wait()
        freq = self.freqs[k]
        self.channel.latest = snapshot(k / 10, freq, (freq - 50.0) * 20000.0)


async def test_the_service_writes_the_activation_file_and_its_summary(tmp_path: Path) -> None:
    section = FrequencyLogSection(enabled=True, directory=tmp_path, before_s=0.5, after_s=0.5)
    wall = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    channel = FakeChannel()
    # 3 s of 100 ms samples: 49.5 Hz from 1.0 s to 1.5 s
    time = ScriptedTime(channel, [49.5 if 10 <= k < 15 else 50.0 for k in range(30)])
    summaries: list[dict[str, object]] = []
    service = FrequencyLogService(
        section,
        clock=time.clock,
        wait_until=time.wait_until,
        wall=lambda: wall,
        on_activation=summaries.append,
    )
    task = asyncio.create_task(service.run(channel))  # type: ignore[arg-type]
    async with asyncio.timeout(10.0):
        await time.done.wait()
    task.cancel()
    summary_path = tmp_path / "activation-20261203T140000.000000Z.json"
    rows = list(csv.DictReader((tmp_path / summary_path.with_suffix(".csv").name).open()))
    assert rows[0].keys() == {"t_s", "freq_hz", "setpoint_w", "power_w"}
    assert min(float(r["freq_hz"]) for r in rows) == 49.5
    # 0.5 s before (5 samples), the 5 outside the band, 0.5 s after the last (5 samples).
    assert [float(r["t_s"]) for r in rows] == pytest.approx([k / 10 - 0.5 for k in range(15)])
    summary = json.loads(summary_path.read_text())
    assert summary["min_power_w"] == -10000.0
    assert [s["file"] for s in summaries] == [summary_path.with_suffix(".csv").name]
    assert service.activations == 1


def test_an_unwritable_directory_is_logged_and_nothing_else_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    section = FrequencyLogSection(
        enabled=True, directory=blocked / "sub", before_s=0.2, after_s=0.2
    )
    service = FrequencyLogService(section)
    recorder = ActivationRecorder(before_s=0.2, after_s=0.2)
    with caplog.at_level(logging.ERROR):
        for k, f in enumerate([50.0] * 5 + [49.0] * 3 + [50.0] * 10):
            service.record(recorder.add(sample(k, f)))
    assert "cannot be written" in caplog.text
    assert service.activations == 1
