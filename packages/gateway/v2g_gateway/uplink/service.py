"""The uplink as one of the supervisor's services: this gateway's own charger, read from the
control channel, plus the control loop's events as they happen.

Wiring (``packages/gateway/v2g_gateway/daemon.py``)::

    services.append(UplinkService(config.uplink))

``limits`` is how the station (OCPP / ISO 15118 side) says what the plugged-in EV may do;
without it the summary offers no power (a floor, never an over-promise).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from v2g_common.telemetry import EventSeverity
from v2g_common.telemetry.payloads import DetailValue
from v2g_gateway.control.channel import ControlEvent, ControlSnapshot
from v2g_gateway.control.events import EventCode
from v2g_gateway.uplink.config import UplinkConfig
from v2g_gateway.uplink.ports import ChargerState
from v2g_gateway.uplink.requests import RequestHandler
from v2g_gateway.uplink.uplink import SiteUplink

__all__ = [
    "ChargerLimits",
    "ControlSnapshotSource",
    "SnapshotChannel",
    "UplinkService",
    "severity_of",
]

log = logging.getLogger(__name__)
REPORT_QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class SiteReport:
    code: str
    severity: EventSeverity
    detail: dict[str, DetailValue]


_INFO = {
    EventCode.TRIP_CLEARED,
    EventCode.FAILSAFE_CLEARED,
    EventCode.COMMS_LOSS_RECOVERED,
    EventCode.SOC_FLOOR_REACHED,
    EventCode.SOC_CEILING_REACHED,
    EventCode.EV_DISCONNECTED,
}
_WARNING = {
    EventCode.LEASE_EXPIRED,
    EventCode.COMMS_LOSS_RAMP,
    EventCode.COMMS_LOSS_FAILSAFE,
    EventCode.SUPERVISOR_LOST,
    EventCode.EV_COMM_TIMEOUT,
    EventCode.OCPP_MSG_TIMEOUT,
}


def severity_of(code: EventCode) -> EventSeverity:
    """Trips and daemon faults are critical, ramped stops warnings, recoveries info."""
    if code in _INFO:
        return "info"
    return "warning" if code in _WARNING else "critical"


@dataclass(frozen=True, slots=True)
class ChargerLimits:
    """What the connected EV and the charger allow now (magnitudes, W)."""

    v2x_capable: bool
    max_discharge_w: float
    max_charge_w: float


class SnapshotChannel(Protocol):
    """The part of :class:`~v2g_gateway.control.channel.ControlChannel` the uplink uses."""

    def snapshot(self) -> ControlSnapshot: ...

    def subscribe_events(self) -> asyncio.Queue[ControlEvent]: ...


class ControlSnapshotSource:
    """:class:`ChargerStateSource` over the control loop's latest snapshot. A snapshot older
    than ``max_age_s`` (control process stalled or gone) is not reported at all."""

    def __init__(
        self,
        channel: SnapshotChannel,
        *,
        charger_id: str,
        limits: Callable[[], ChargerLimits | None] = lambda: None,
        max_age_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._charger_id = charger_id
        self._limits = limits
        self._max_age_s = max_age_s
        self._clock = clock

    async def read_charger_state(self) -> ChargerState:
        snap = self._channel.snapshot()
        age_s = self._clock() - snap.monotonic_s
        if snap.cycles == 0 or not math.isfinite(age_s) or age_s > self._max_age_s:
            raise TimeoutError(f"control snapshot is {age_s:.1f} s old")
        limits = self._limits() if snap.ev_connected else None
        discharge_w = charge_w = 0.0
        if limits is not None and not (snap.fail_safe or snap.tripped):
            charge_w = limits.max_charge_w
            discharge_w = limits.max_discharge_w if limits.v2x_capable else 0.0
        return ChargerState(
            charger_id=self._charger_id,
            sessions_connected=int(snap.ev_connected),
            v2x_sessions=int(limits is not None and limits.v2x_capable),
            available_discharge_w=discharge_w,
            available_charge_w=charge_w,
            power_w=snap.power_w,
            soc_pct=(snap.soc_pct,) if snap.soc_pct is not None else (),
            energy_import_wh=snap.energy_import_wh,
            energy_export_wh=snap.energy_export_wh,
            fail_safe=snap.fail_safe or snap.tripped,
            trip_code=snap.trip_code,
        )


class UplinkService:
    """Supervisor service (``name``, ``run(channel)``, ``reload(config)``)."""

    name = "uplink"

    def __init__(
        self,
        config: UplinkConfig,
        *,
        charger_id: str | None = None,
        limits: Callable[[], ChargerLimits | None] = lambda: None,
    ) -> None:
        self.config = config
        self._charger_id = charger_id or config.site
        self._limits = limits
        self._reports: asyncio.Queue[SiteReport] = asyncio.Queue(maxsize=REPORT_QUEUE_SIZE)
        #: Answers the core's requests to this site (activation files), when set.
        self.request_handler: RequestHandler | None = None

    def serve_requests(self, handler: RequestHandler) -> None:
        """Answer the core's requests to this site with ``handler`` (activation files)."""
        self.request_handler = handler

    def report(
        self, code: str, *, severity: EventSeverity, detail: Mapping[str, DetailValue]
    ) -> None:
        """An event from another supervisor service (the frequency log's activations); sent
        like the control loop's. A full queue (uplink stuck) drops it, logged."""
        try:
            self._reports.put_nowait(SiteReport(code, severity, dict(detail)))
        except asyncio.QueueFull:
            log.warning("uplink: report %s dropped, %d waiting", code, self._reports.qsize())

    def report_event(self, code: str, detail: dict[str, str]) -> None:
        """A shared event code raised outside the control loop (the EV link's
        ``EV_COMM_TIMEOUT``), at that code's severity."""
        self.report(code, severity=severity_of(EventCode(code)), detail=detail)

    async def run(self, channel: SnapshotChannel) -> None:
        events = channel.subscribe_events()
        source = ControlSnapshotSource(channel, charger_id=self._charger_id, limits=self._limits)
        async with (
            SiteUplink(
                self.config, {self._charger_id: source}, requests=self.request_handler
            ) as uplink,
            asyncio.TaskGroup() as group,
        ):
            group.create_task(self._forward_reports(uplink), name="uplink-reports")
            while True:
                event = await events.get()
                uplink.record_event(
                    str(event.code), severity=severity_of(event.code), charger=self._charger_id
                )

    async def _forward_reports(self, uplink: SiteUplink) -> None:
        while True:
            r = await self._reports.get()
            uplink.record_event(
                r.code, severity=r.severity, charger=self._charger_id, detail=r.detail
            )

    def reload(self, config: object) -> None:
        log.info("uplink: configuration changes take effect at the next daemon restart")
