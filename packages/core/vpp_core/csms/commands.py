"""Commands to stations: correlated calls with timeouts, every outcome recorded.

Implements ``vpp_core.dispatch.ports.StationCommands`` and a few more commands. A
station's ``Rejected`` is a normal :class:`CommandResult`; a CALLERROR, timeout or closed
connection is raised (``OcppCallError``, ``OcppTimeout``, ``OcppConnectionClosed``) and a
command for a station that is not connected raises :class:`StationOffline`. Each command
is written to the fleet's ``command_log`` (request, status/error, latency).

After a ``Rejected`` profile command the CSMS's view of that station's profiles is stale:
a ``GetChargingProfiles`` re-sync is queued and run by :meth:`run_resyncs` (a task of the
CSMS), whose ``ReportChargingProfiles`` land in ``reported_profiles``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from v2g_common.ocpp21 import OcppAdapterError
from v2g_common.ocpp21.messages import call
from vpp_core.csms.errors import StationOffline
from vpp_core.csms.handlers import ProfileReport, StationEndpoint, utc_now
from vpp_core.csms.metrics import CsmsMetrics
from vpp_core.dispatch.ports import CommandResult
from vpp_core.fleet.state import FleetState

__all__ = ["StationCommander", "command_result"]

log = logging.getLogger(__name__)
_RESYNC_ON_REJECT = frozenset(
    {"SetChargingProfile", "UpdateDynamicSchedule", "ClearChargingProfile"}
)


class StationCommander:
    """Sends commands over the CSMS's open connections (``endpoints``: identity -> endpoint)."""

    def __init__(
        self,
        endpoints: Mapping[str, StationEndpoint],
        fleet: FleetState,
        metrics: CsmsMetrics,
        *,
        timeout_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._endpoints = endpoints
        self._fleet = fleet
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._clock = clock
        self._request_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)
        self._resyncs: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self.resyncs_done = 0

    # -- StationCommands ------------------------------------------------------------------

    async def set_charging_profile(
        self,
        station_id: str,
        evse_id: int,
        profile: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> CommandResult:
        request = call.SetChargingProfile(evse_id=evse_id, charging_profile=dict(profile))
        return await self._status_command(station_id, request, timeout_s)

    async def clear_charging_profile(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
        timeout_s: float | None = None,
    ) -> CommandResult:
        criteria = _drop_none(
            evse_id=evse_id, charging_profile_purpose=purpose, stack_level=stack_level
        )
        request = call.ClearChargingProfile(
            charging_profile_id=profile_id, charging_profile_criteria=criteria or None
        )
        return await self._status_command(station_id, request, timeout_s)

    async def update_dynamic_schedule(
        self,
        station_id: str,
        profile_id: int,
        schedule_update: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> CommandResult:
        request = call.UpdateDynamicSchedule(
            charging_profile_id=profile_id, schedule_update=dict(schedule_update)
        )
        return await self._status_command(station_id, request, timeout_s)

    async def afrr_signal(
        self,
        station_id: str,
        *,
        timestamp: datetime,
        signal: int,
        timeout_s: float | None = None,
    ) -> CommandResult:
        request = call.AFRRSignal(timestamp=timestamp.isoformat(), signal=signal)
        return await self._status_command(station_id, request, timeout_s)

    async def get_charging_profiles(
        self,
        station_id: str,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
        timeout_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """The profiles the station reports (``ReportChargingProfiles`` until ``tbc`` false)."""
        endpoint = self._endpoint(station_id)
        request_id = next(self._request_ids)
        criteria = _drop_none(charging_profile_purpose=purpose, stack_level=stack_level)
        request = call.GetChargingProfiles(
            request_id=request_id, charging_profile=criteria, evse_id=evse_id
        )
        report = endpoint.profile_reports[request_id] = ProfileReport()
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await self._status_command(station_id, request, timeout)
                if result.status != "Accepted":
                    return []
                await report.done.wait()
        finally:
            del endpoint.profile_reports[request_id]
        return report.profiles

    # -- more commands ----------------------------------------------------------------------

    async def get_composite_schedule(
        self, station_id: str, *, evse_id: int, duration_s: int, rate_unit: str | None = "W"
    ) -> tuple[CommandResult, dict[str, Any] | None]:
        request = call.GetCompositeSchedule(
            duration=duration_s, evse_id=evse_id, charging_rate_unit=rate_unit
        )
        answer = await self._call(station_id, request, None)
        return _result(answer), answer.schedule

    async def notify_allowed_energy_transfer(
        self, station_id: str, transaction_id: str, allowed: list[str]
    ) -> CommandResult:
        """Q01: restrict the session's energy transfer modes; once the station accepts, a list
        without a bidirectional mode makes the session charge-only for dispatch."""
        request = call.NotifyAllowedEnergyTransfer(
            transaction_id=transaction_id, allowed_energy_transfer=list(allowed)
        )
        result = await self._status_command(station_id, request, None)
        if result.status == "Accepted":
            self._fleet.record_allowed_energy_transfer(
                station_id, transaction_id=transaction_id, modes=allowed, now=self._clock()
            )
        return result

    async def trigger_message(
        self, station_id: str, requested_message: str, *, evse_id: int | None = None
    ) -> CommandResult:
        evse = {"id": evse_id} if evse_id is not None else None
        request = call.TriggerMessage(requested_message=requested_message, evse=evse)
        return await self._status_command(station_id, request, None)

    async def send(self, station_id: str, request: Any, *, timeout_s: float | None = None) -> Any:
        """Any other command (a ``call.<Action>``): the station's answer, logged like the rest
        (``vpp_core.csms.operations`` builds on it)."""
        return await self._call(station_id, request, timeout_s)

    # -- plumbing -------------------------------------------------------------------------

    def _endpoint(self, station_id: str) -> StationEndpoint:
        endpoint = self._endpoints.get(station_id)
        if endpoint is None:
            raise StationOffline(station_id)
        return endpoint

    async def _status_command(
        self, station_id: str, request: Any, timeout_s: float | None
    ) -> CommandResult:
        return _result(await self._call(station_id, request, timeout_s))

    async def _call(self, station_id: str, request: Any, timeout_s: float | None) -> Any:
        endpoint = self._endpoint(station_id)
        action = type(request).__name__
        logged = _Logged(station_id, action, _fields_of(request), self._clock())
        try:
            answer = await endpoint.call(
                request, timeout_s=self._timeout_s if timeout_s is None else timeout_s
            )
        except (OcppAdapterError, StationOffline) as exc:
            self._record(logged, type(exc).__name__, error=f"{type(exc).__name__}: {exc}")
            raise
        result = _result(answer)
        self._record(logged, result.status, status=result.status, reason=result.reason)
        if result.status == "Rejected" and action in _RESYNC_ON_REJECT:
            self._queue_resync(station_id)
        return answer

    def _record(self, logged: _Logged, outcome: str, **result: str | None) -> None:
        """One ``command_log`` row and the command metrics, whatever the outcome."""
        elapsed = time.perf_counter() - logged.started
        self._fleet.record_command(
            station_id=logged.station_id,
            action=logged.action,
            request=logged.request,
            sent_at=logged.sent_at,
            latency_s=elapsed,
            **result,
        )
        self._metrics.observe_command(logged.action, outcome, elapsed)

    def _queue_resync(self, station_id: str) -> None:
        try:
            self._resyncs.put_nowait(station_id)
        except asyncio.QueueFull:
            log.warning("profile re-sync queue full; %s not re-synced", station_id)

    async def run_resyncs(self) -> None:
        """Re-read the profiles of stations that rejected a profile command (runs forever)."""
        while True:
            station_id = await self._resyncs.get()
            try:
                await self.get_charging_profiles(station_id)
            except (OcppAdapterError, StationOffline, TimeoutError) as exc:
                log.warning("profile re-sync of %s failed: %s", station_id, exc)
            self.resyncs_done += 1


@dataclasses.dataclass(frozen=True, slots=True)
class _Logged:
    """A command as it left, for its ``command_log`` row."""

    station_id: str
    action: str
    request: dict[str, Any]
    sent_at: datetime
    started: float = dataclasses.field(default_factory=time.perf_counter)


def _fields_of(request: Any) -> dict[str, Any]:
    """The request's fields for the command log, shared rather than deep-copied.

    ``dataclasses.asdict`` deep-copies the whole charging profile (33 µs against 0.8 µs per
    SetChargingProfile; a quarter of the CSMS's CPU in a 10k-station fan-out). The fleet
    serializes the row's request when it is recorded, right after the answer.
    """
    return {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def command_result(answer: Any) -> CommandResult:
    """A station's answer with a ``status`` (and maybe ``statusInfo``) as a result."""
    return _result(answer)


def _result(answer: Any) -> CommandResult:
    """``Answered`` for answers without an overall status (GetVariables, SetVariables)."""
    info = getattr(answer, "status_info", None) or {}
    reason = info.get("reason_code")
    if reason and info.get("additional_info"):
        reason = f"{reason}: {info['additional_info']}"
    status = getattr(answer, "status", None)
    return CommandResult(status="Answered" if status is None else str(status), reason=reason)
