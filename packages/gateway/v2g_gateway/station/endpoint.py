"""The station's OCPP endpoint: the CSMS's smart-charging and V2X commands, and the
management commands of a CSMS that runs the station (TriggerMessage, Get/SetVariables,
GetBaseReport, Reset, RequestStart/StopTransaction, ChangeAvailability, CertificateSigned),
answered from :class:`StationServices` (implemented by
:class:`~v2g_gateway.station.station.ChargingStation`).

Handlers only translate; every decision lives in the services. A command whose effect OCPP
wants *after* the answer (the triggered message, the Ended event, a report, the reconnect
with a new certificate) is decided in its ``@on`` handler and carried out in its ``@after``
hook. Whatever the CSMS sends that has no handler, is malformed or breaks its schema is
answered by the adapter with a CALLERROR, and the connection stays up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from v2g_common.ocpp21 import ChargingStationEndpoint, OccurrenceConstraintViolation, after, on
from v2g_common.ocpp21.messages import call_result
from v2g_gateway.station.composite import ActiveTransaction, CompositeSchedule
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.profiles import parse_datetime
from v2g_gateway.station.smart_charging import SmartCharging, composite_to_wire
from v2g_gateway.station.variables import ITEMS_PER_MESSAGE

if TYPE_CHECKING:
    from v2g_gateway.station.management import StationManagement

__all__ = ["StationEndpoint", "StationServices"]


class StationServices(Protocol):
    """What the endpoint needs from the running station."""

    smart: SmartCharging
    management: StationManagement

    def now(self) -> datetime: ...

    def contact(self) -> None:
        """A real exchange with the CSMS just happened."""

    def transactions(self) -> dict[int, ActiveTransaction]: ...

    def offline_since(self) -> datetime | None: ...

    def profiles_changed(self) -> None:
        """Re-evaluate the composite schedule now (do not wait for the next tick)."""

    async def state_durable(self) -> None:
        """Every state written so far is on disk (before an ``Accepted`` that promises it)."""

    def queue_profile_report(self, request_id: int, evse_profiles: list[tuple[int, Any]]) -> None:
        """Send ReportChargingProfiles for ``(evse_id, profiles)`` after this answer."""

    def energy_transfer_allowed(self, transaction_id: str, modes: list[str]) -> bool:
        """Apply NotifyAllowedEnergyTransfer; False when the transaction is unknown."""

    def composite_schedule(self, evse_id: int, *, duration_s: int) -> CompositeSchedule:
        """The composite schedule within the EVSE's local limits."""

    def afrr_signal(self, signal: int, timestamp: datetime) -> None:
        """Apply AFRRSignalRequest; raise ProfileRejected with the reason it cannot."""


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
        svc.profiles_changed()  # in force at once; the answer waits until it is on disk
        await svc.state_durable()
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
        await svc.state_durable()
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
        schedule = svc.composite_schedule(evse_id, duration_s=duration)
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
        await svc.state_durable()
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

    @on("AFRRSignal")
    async def on_afrr_signal(self, timestamp: str, signal: int, **_: Any) -> call_result.AFRRSignal:
        svc = self.services
        svc.contact()
        try:
            svc.afrr_signal(signal, parse_datetime(timestamp))
        except ProfileRejected as exc:
            return call_result.AFRRSignal(status="Rejected", status_info=_rejected(exc))
        return call_result.AFRRSignal(status="Accepted")

    @on("GetTransactionStatus")
    def on_get_transaction_status(
        self, transaction_id: str | None = None, **_: Any
    ) -> call_result.GetTransactionStatus:
        """E14: whether events wait in the outbox (of that transaction) and whether it runs."""
        svc = self.services
        svc.contact()
        queued = svc.management.queued_events(transaction_id)
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=queued)
        running = any(t.transaction_id == transaction_id for t in svc.transactions().values())
        return call_result.GetTransactionStatus(messages_in_queue=queued, ongoing_indicator=running)

    # -- management -----------------------------------------------------------------------
    @on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, evse: Mapping[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        self.services.contact()
        status = self.services.management.trigger(requested_message, evse, apply=False)
        return call_result.TriggerMessage(status=status)

    @after("TriggerMessage")
    def after_trigger_message(
        self, requested_message: str, evse: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        self.services.management.trigger(requested_message, evse, apply=True)

    @on("GetVariables")
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        self.services.contact()
        _check_items(get_variable_data, "getVariableData")
        results = self.services.management.device_model.get(get_variable_data)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    async def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.SetVariables:
        self.services.contact()
        _check_items(set_variable_data, "setVariableData")
        results = self.services.management.device_model.set(set_variable_data)
        await self.services.state_durable()
        return call_result.SetVariables(set_variable_result=results)

    @on("GetBaseReport")
    def on_get_base_report(
        self, request_id: int, report_base: str, **_: Any
    ) -> call_result.GetBaseReport:
        self.services.contact()
        status = self.services.management.base_report(request_id, report_base, apply=False)
        return call_result.GetBaseReport(status=status)

    @after("GetBaseReport")
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        self.services.management.base_report(request_id, report_base, apply=True)

    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> call_result.Reset:
        self.services.contact()
        status = self.services.management.reset(type, evse_id, apply=False)
        return call_result.Reset(status=status)

    @after("Reset")
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        self.services.management.reset(type, evse_id, apply=True)

    @on("RequestStartTransaction")
    def on_request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        self.services.contact()
        status, transaction_id = self.services.management.request_start(
            id_token=id_token,
            remote_start_id=remote_start_id,
            evse_id=evse_id,
            charging_profile=charging_profile,
            apply=False,
        )
        return call_result.RequestStartTransaction(status=status, transaction_id=transaction_id)

    @after("RequestStartTransaction")
    def after_request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        self.services.management.request_start(
            id_token=id_token,
            remote_start_id=remote_start_id,
            evse_id=evse_id,
            charging_profile=charging_profile,
            apply=True,
        )

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **_: Any) -> call_result.RequestStopTransaction:
        self.services.contact()
        status = self.services.management.request_stop(transaction_id, apply=False)
        return call_result.RequestStopTransaction(status=status)

    @after("RequestStopTransaction")
    def after_request_stop(self, transaction_id: str, **_: Any) -> None:
        self.services.management.request_stop(transaction_id, apply=True)

    @on("ChangeAvailability")
    def on_change_availability(
        self, operational_status: str, evse: Mapping[str, Any] | None = None, **_: Any
    ) -> call_result.ChangeAvailability:
        self.services.contact()
        status = self.services.management.change_availability(operational_status, evse, apply=False)
        return call_result.ChangeAvailability(status=status)

    @after("ChangeAvailability")
    def after_change_availability(
        self, operational_status: str, evse: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        self.services.management.change_availability(operational_status, evse, apply=True)

    @on("CertificateSigned")
    def on_certificate_signed(
        self, certificate_chain: str, certificate_type: str | None = None, **_: Any
    ) -> call_result.CertificateSigned:
        self.services.contact()
        status, reason = self.services.management.certificate_signed(
            certificate_chain, certificate_type
        )
        info = (
            None
            if reason is None
            else {"reason_code": "InvalidCertificate", "additional_info": reason[:1024]}
        )
        return call_result.CertificateSigned(status=status, status_info=info)

    @after("CertificateSigned")
    async def after_certificate_signed(self, **_: Any) -> None:
        if self.services.management.renewed_certificate():
            await self.services.management.use_new_certificate()


def _check_items(items: list[dict[str, Any]], name: str) -> None:
    """DeviceDataCtrlr.ItemsPerMessage: a request with more entries is refused whole."""
    if len(items) > ITEMS_PER_MESSAGE:
        raise OccurrenceConstraintViolation(
            f"{name}: {len(items)} entries, at most {ITEMS_PER_MESSAGE} per message"
        )
