"""The station's OCPP endpoint: the CSMS's smart-charging and V2X commands, answered from
:class:`StationServices` (implemented by :class:`~v2g_gateway.station.station.ChargingStation`).

Handlers only translate; every decision lives in the services. Whatever the CSMS sends that
has no handler, is malformed or breaks its schema is answered by the adapter with a CALLERROR,
and the connection stays up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from v2g_common.ocpp21 import ChargingStationEndpoint, on
from v2g_common.ocpp21.messages import call_result
from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.smart_charging import SmartCharging, composite_to_wire

__all__ = ["StationEndpoint", "StationServices"]


class StationServices(Protocol):
    """What the endpoint needs from the running station."""

    smart: SmartCharging

    def now(self) -> datetime: ...

    def contact(self) -> None:
        """A real exchange with the CSMS just happened."""

    def transactions(self) -> dict[int, ActiveTransaction]: ...

    def offline_since(self) -> datetime | None: ...

    def profiles_changed(self) -> None:
        """Re-evaluate the composite schedule now (do not wait for the next tick)."""

    def queue_profile_report(self, request_id: int, evse_profiles: list[tuple[int, Any]]) -> None:
        """Send ReportChargingProfiles for ``(evse_id, profiles)`` after this answer."""

    def energy_transfer_allowed(self, transaction_id: str, modes: list[str]) -> bool:
        """Apply NotifyAllowedEnergyTransfer; False when the transaction is unknown."""


def _rejected(exc: ProfileRejected) -> dict[str, str]:
    return {"reason_code": exc.reason_code, "additional_info": exc.detail}


class StationEndpoint(ChargingStationEndpoint):
    """One connection's handlers (a new endpoint per websocket connection)."""

    def __init__(
        self,
        identity: str,
        connection: Any,
        *,
        services: StationServices,
        response_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(identity, connection, response_timeout_s=response_timeout_s)
        self.services = services

    @on("SetChargingProfile")
    async def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        svc = self.services
        svc.contact()
        try:
            svc.smart.install(
                evse_id, charging_profile, transactions=svc.transactions(), now=svc.now()
            )
        except ProfileRejected as exc:
            return call_result.SetChargingProfile(status="Rejected", status_info=_rejected(exc))
        svc.profiles_changed()
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    async def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        svc = self.services
        svc.contact()
        criteria = charging_profile_criteria or {}
        removed = svc.smart.clear(
            profile_id=charging_profile_id,
            evse_id=criteria.get("evse_id"),
            purpose=criteria.get("charging_profile_purpose"),
            stack_level=criteria.get("stack_level"),
        )
        svc.profiles_changed()
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on("GetChargingProfiles")
    async def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: Mapping[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.GetChargingProfiles:
        svc = self.services
        svc.contact()
        found = svc.smart.matching(
            evse_id=evse_id,
            purpose=charging_profile.get("charging_profile_purpose"),
            stack_level=charging_profile.get("stack_level"),
            profile_ids=charging_profile.get("charging_profile_id"),
        )
        sources = charging_profile.get("charging_limit_source")
        if not found or (sources and "CSO" not in sources):
            return call_result.GetChargingProfiles(status="NoProfiles")
        by_evse: dict[int, list[Any]] = {}
        for stored in found:
            by_evse.setdefault(stored.profile.evse_id, []).append(dict(stored.wire))
        svc.queue_profile_report(request_id, sorted(by_evse.items()))
        return call_result.GetChargingProfiles(status="Accepted")

    @on("GetCompositeSchedule")
    async def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        svc = self.services
        svc.contact()
        if evse_id != 0 and evse_id not in svc.smart.evse_ids:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info={"reason_code": "UnknownEvse"}
            )
        schedule = svc.smart.composite(
            evse_id,
            now=svc.now(),
            duration_s=duration,
            transaction=svc.transactions().get(evse_id),
            offline_since=svc.offline_since(),
        )
        wire = composite_to_wire(
            schedule,
            unit=charging_rate_unit or "W",
            electrics=svc.smart.electrics(evse_id),
            legacy=self.subprotocol == "ocpp2.0.1",
        )
        return call_result.GetCompositeSchedule(status="Accepted", schedule=wire)

    @on("UpdateDynamicSchedule")
    async def on_update_dynamic_schedule(
        self, charging_profile_id: int, schedule_update: Mapping[str, Any], **_: Any
    ) -> call_result.UpdateDynamicSchedule:
        svc = self.services
        svc.contact()
        try:
            svc.smart.update_dynamic(
                charging_profile_id,
                schedule_update,
                transactions=svc.transactions(),
                now=svc.now(),
            )
        except ProfileRejected as exc:
            return call_result.UpdateDynamicSchedule(status="Rejected", status_info=_rejected(exc))
        svc.profiles_changed()
        return call_result.UpdateDynamicSchedule(status="Accepted")

    @on("NotifyAllowedEnergyTransfer")
    async def on_notify_allowed_energy_transfer(
        self, transaction_id: str, allowed_energy_transfer: list[str], **_: Any
    ) -> call_result.NotifyAllowedEnergyTransfer:
        svc = self.services
        svc.contact()
        if not svc.energy_transfer_allowed(transaction_id, list(allowed_energy_transfer)):
            return call_result.NotifyAllowedEnergyTransfer(
                status="Rejected", status_info={"reason_code": "TxNotFound"}
            )
        return call_result.NotifyAllowedEnergyTransfer(status="Accepted")
