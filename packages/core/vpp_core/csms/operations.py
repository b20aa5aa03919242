"""Commands a CSMS needs to run a station beyond smart charging: its device model (B06
GetVariables, B05 SetVariables, B07 GetBaseReport), Reset (B11/B12), RequestStart/Stop
Transaction (F01/F03), ChangeAvailability (G03/G04) and asking for a certificate renewal (A02
TriggerMessage SignChargingStationCertificate).

Each goes through :meth:`StationCommander.send` (command log, metrics, typed errors: a
CALLERROR, timeout or closed connection raises; ``Rejected`` is a result). What the station
reports or accepts of its device model is written to the fleet database.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from v2g_common.ocpp21.messages import call
from vpp_core.csms import device_model
from vpp_core.csms.commands import StationCommander, command_result
from vpp_core.csms.equipment import Equipment
from vpp_core.csms.errors import StationOffline
from vpp_core.csms.handlers import PendingReport, StationEndpoint, utc_now
from vpp_core.dispatch.ports import CommandResult
from vpp_core.fleet.equipment import DeviceVariable

__all__ = ["StationOperations"]


class StationOperations:
    """Station management over the CSMS's open connections."""

    def __init__(
        self,
        commander: StationCommander,
        endpoints: Mapping[str, StationEndpoint],
        equipment: Equipment,
        *,
        timeout_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._commander = commander
        self._endpoints = endpoints
        self._equipment = equipment
        self._timeout_s = timeout_s
        self._clock = clock
        self._request_ids = itertools.count(int(time.time()) % 1_000_000 * 1000 + 500)

    # -- device model ---------------------------------------------------------------------
    async def get_variables(
        self, station_id: str, requests: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``getVariableResult`` for ``getVariableData`` (snake_case); Accepted values kept."""
        answer = await self._commander.send(
            station_id, call.GetVariables(get_variable_data=[dict(r) for r in requests])
        )
        results: list[dict[str, Any]] = answer.get_variable_result
        rows = device_model.from_get_results(results, now=self._clock())
        await self._equipment.save_variables(station_id, rows)
        return results

    async def set_variables(
        self, station_id: str, requests: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``setVariableResult`` for ``setVariableData``; values the station took are kept."""
        answer = await self._commander.send(
            station_id, call.SetVariables(set_variable_data=[dict(r) for r in requests])
        )
        results: list[dict[str, Any]] = answer.set_variable_result
        rows = device_model.from_set_results(requests, results, now=self._clock())
        await self._equipment.save_variables(station_id, rows)
        return results

    async def base_report(
        self, station_id: str, report_base: str = "FullInventory", *, timeout_s: float | None = None
    ) -> list[DeviceVariable]:
        """GetBaseReport, and the device model its NotifyReports carry (until ``tbc`` false).

        An answer other than Accepted returns ``[]``."""
        endpoint = self._endpoints.get(station_id)
        if endpoint is None:
            raise StationOffline(station_id)
        request_id = next(self._request_ids)
        report = endpoint.device_reports[request_id] = PendingReport()
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout):
                request = call.GetBaseReport(request_id=request_id, report_base=report_base)
                answer = await self._commander.send(station_id, request, timeout_s=timeout)
                if answer.status != "Accepted":
                    return []
                await report.done.wait()
        finally:
            del endpoint.device_reports[request_id]
        return device_model.from_report(report.items, now=self._clock())

    # -- control --------------------------------------------------------------------------
    async def reset(
        self, station_id: str, reset_type: str = "OnIdle", *, evse_id: int | None = None
    ) -> CommandResult:
        return command_result(
            await self._commander.send(station_id, call.Reset(type=reset_type, evse_id=evse_id))
        )

    async def request_start(
        self,
        station_id: str,
        id_token: Mapping[str, Any],
        *,
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: Mapping[str, Any] | None = None,
    ) -> tuple[CommandResult, str | None]:
        """(answer, transactionId of a transaction it authorized)."""
        request = call.RequestStartTransaction(
            id_token=dict(id_token),
            remote_start_id=remote_start_id,
            evse_id=evse_id,
            charging_profile=None if charging_profile is None else dict(charging_profile),
        )
        answer = await self._commander.send(station_id, request)
        return command_result(answer), answer.transaction_id

    async def request_stop(self, station_id: str, transaction_id: str) -> CommandResult:
        request = call.RequestStopTransaction(transaction_id=transaction_id)
        return command_result(await self._commander.send(station_id, request))

    async def change_availability(
        self, station_id: str, *, operative: bool, evse_id: int | None = None
    ) -> CommandResult:
        request = call.ChangeAvailability(
            operational_status="Operative" if operative else "Inoperative",
            evse=None if evse_id is None else {"id": evse_id},
        )
        return command_result(await self._commander.send(station_id, request))

    async def renew_certificate(self, station_id: str) -> CommandResult:
        """Ask the station for a SignCertificate now (the CSMS signs it when it comes)."""
        request = call.TriggerMessage(requested_message="SignChargingStationCertificate")
        return command_result(await self._commander.send(station_id, request))
