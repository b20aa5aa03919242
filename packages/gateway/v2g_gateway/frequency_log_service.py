"""``[frequency_log]``: the supervisor service that samples the control loop's snapshot every
100 ms and writes each frequency activation (10 s before it to 15 min after the last
excursion, :mod:`v2g_gateway.frequency_log`) to a CSV file, with a JSON summary beside it
when the activation ends.

Files: ``<directory>/activation-<UTC start>.csv`` (``t_s`` from the activation's start,
``freq_hz``, ``setpoint_w``, ``power_w``) and ``.json`` (the summary). A directory that
cannot be written is logged once per activation and the samples are dropped; the service
and the control loop carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import Field

from v2g_common.config import ConfigSection
from v2g_gateway.control.channel import ControlChannel
from v2g_gateway.frequency_log import ActivationRecorder, FrequencySample, Recorded

if TYPE_CHECKING:
    from v2g_gateway.config import GatewayConfig

__all__ = ["FrequencyLogSection", "FrequencyLogService"]

log = logging.getLogger(__name__)

SAMPLE_PERIOD_S = 0.1


class FrequencyLogSection(ConfigSection):
    """Where and when activations are recorded."""

    enabled: bool = False
    directory: Path = Path("/var/lib/v2g-gateway/activations")
    nominal_hz: float = Field(default=50.0, gt=0)
    deadband_hz: float = Field(default=0.015, ge=0)
    before_s: float = Field(default=10.0, ge=0)
    after_s: float = Field(default=900.0, gt=0)


class FrequencyLogService:
    name = "frequency-log"

    def __init__(
        self,
        section: FrequencyLogSection,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait_until: Callable[[float], Awaitable[None]] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_activation: Callable[[dict[str, float | str | bool]], None] | None = None,
    ) -> None:
        """``on_activation(summary)`` when an activation ends (the uplink's MQTT event);
        ``wait_until(deadline)`` paces the sampling on ``clock`` (tests inject both)."""
        self._section = section
        self._on_activation = on_activation
        self._clock = clock
        self._wait_until = wait_until or self._sleep_until
        self._wall = wall
        self._file: TextIO | None = None
        self._path: Path | None = None
        self._start_s = 0.0
        self._started_at = datetime.min.replace(tzinfo=UTC)
        self._reloaded = False
        self.activations = 0

    def reload(self, config: GatewayConfig) -> None:
        self._section = config.frequency_log  # the next activation uses the new values
        self._reloaded = True

    def _recorder(self) -> ActivationRecorder:
        s = self._section
        return ActivationRecorder(
            nominal_hz=s.nominal_hz,
            deadband_hz=s.deadband_hz,
            before_s=s.before_s,
            after_s=s.after_s,
            sample_period_s=SAMPLE_PERIOD_S,
        )

    async def run(self, channel: ControlChannel) -> None:
        recorder = self._recorder()
        deadline = self._clock()
        last_s = -math.inf
        try:
            while True:
                deadline += SAMPLE_PERIOD_S
                await self._wait_until(deadline)
                snap = channel.snapshot()
                if snap.cycles == 0 or snap.monotonic_s == last_s:
                    continue  # no loop period yet, or none since the last sample: no new sample
                last_s = snap.monotonic_s
                sample = FrequencySample(
                    snap.monotonic_s, snap.grid_freq_hz, snap.commanded_w, snap.power_w
                )
                self.record(recorder.add(sample))
                if self._reloaded and not recorder.active:  # between activations only
                    recorder, self._reloaded = self._recorder(), False
        finally:
            self._close()

    async def _sleep_until(self, deadline_s: float) -> None:
        await asyncio.sleep(max(0.0, deadline_s - self._clock()))

    def record(self, out: Recorded) -> None:
        """Open, append to and close the activation's files as ``out`` says."""
        if out.started is not None:
            self._open(out.started.started_s)
        if self._file is not None and out.write:
            try:
                for s in out.write:
                    t = s.t_s - self._start_s
                    self._file.write(
                        f"{t:.3f},{s.freq_hz:.4f},{s.setpoint_w:.1f},{s.power_w:.1f}\n"
                    )
            except OSError as exc:
                log.error(
                    "activation file %s: %s; this activation's samples are lost", self._path, exc
                )
                self._close()
        if out.finished is not None:
            self._write_summary(out.finished.figures())
            self._close()

    def _open(self, started_s: float) -> None:
        self.activations += 1
        self._start_s = started_s
        self._started_at = self._wall()
        stamp = self._started_at.strftime("%Y%m%dT%H%M%S.%fZ")
        path = self._section.directory / f"activation-{stamp}.csv"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
            self._file.write("t_s,freq_hz,setpoint_w,power_w\n")
            self._path = path
            log.warning("frequency activation: recording to %s", path)
        except OSError as exc:
            log.error("activation file %s cannot be written: %s; not recorded", path, exc)
            self._file = None

    def _write_summary(self, values: dict[str, float | str | bool]) -> None:
        if self._path is None:
            return
        summary: dict[str, float | str | bool] = {**values, "file": self._path.name}
        summary["started_at"] = self._started_at.isoformat()
        summary["nominal_hz"] = self._section.nominal_hz
        summary["duration_s"] = float(values.get("ended_s", math.nan)) - float(values["started_s"])
        try:
            self._path.with_suffix(".json").write_text(json.dumps(summary, indent=2))
        except OSError as exc:
            log.error("activation summary %s: %s", self._path.with_suffix(".json"), exc)
        log.info("frequency activation over: %s", json.dumps(summary))
        if self._on_activation is not None:
            self._on_activation(summary)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._path = None
