"""The CSMS side of one station connection: thin handlers over the live fleet and the
CSMS's equipment records (idToken policy, certificates, device models).

Each handler reads its arguments, calls one ``FleetState.record_*`` method (or asks
:class:`~vpp_core.csms.equipment.Equipment`) and answers. ``NotifyEVChargingNeeds`` is
answered first and recorded after (the station is waiting on ISO 15118 timing); a
NotifyReport is answered first and written after; a SignCertificate is answered, then signed
and sent back as CertificateSigned. Unknown actions, malformed frames and schema-invalid
payloads never reach this module: the adapter answers them with CALLERRORs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from v2g_common.ocpp21 import CsmsEndpoint, FormatViolation, OcppAdapterError, after, on
from v2g_common.ocpp21.messages import call as call21
from v2g_common.ocpp21.messages import call_result
from vpp_core.csms import device_model
from vpp_core.csms.certificates import PeerCertificate
from vpp_core.csms.equipment import Equipment
from vpp_core.csms.errors import CertificateRefused
from vpp_core.csms.metrics import CsmsMetrics
from vpp_core.fleet.errors import MeterValueError
from vpp_core.fleet.needs import limits_from_needs
from vpp_core.fleet.state import FleetState

__all__ = ["PendingReport", "ProfileReport", "StationEndpoint", "utc_now"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def utc_now() -> datetime:
    return datetime.now(UTC)


def _handles(action: str) -> Callable[[F], F]:
    """``@on(action)`` plus metrics, and unreadable values answered as FormatViolation."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def timed(self: StationEndpoint, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(self, **kwargs)
            except MeterValueError as exc:
                raise FormatViolation(str(exc)) from None
            finally:
                self.metrics.observe_message(action, time.perf_counter() - started)

        return on(action)(timed)  # type: ignore[return-value]

    return wrap


class PendingReport:
    """What a station reports for one request id (over several messages), until ``tbc`` is
    false: profiles for GetChargingProfiles, ``reportData`` for GetBaseReport."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    def add(self, items: list[dict[str, Any]], *, tbc: bool) -> None:
        self.items.extend(items)
        if not tbc:
            self.done.set()


class ProfileReport(PendingReport):
    """Profiles reported for one ``GetChargingProfiles`` request id."""

    @property
    def profiles(self) -> list[dict[str, Any]]:
        return self.items


class StationEndpoint(CsmsEndpoint):
    """One connected station. ``fleet`` is shared; everything else is per connection."""

    def __init__(
        self,
        identity: str,
        connection: Any,
        *,
        fleet: FleetState,
        metrics: CsmsMetrics,
        heartbeat_interval_s: int,
        equipment: Equipment,
        peer_certificate: PeerCertificate | None = None,
        response_timeout_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(identity, connection, response_timeout_s=response_timeout_s)
        self.fleet = fleet
        self.metrics = metrics
        self.equipment = equipment
        #: The client certificate this connection was admitted with (security profile 3).
        self.peer_certificate = peer_certificate
        self._heartbeat_interval_s = heartbeat_interval_s
        self._clock = clock
        self.profile_reports: dict[int, ProfileReport] = {}
        self.device_reports: dict[int, PendingReport] = {}
        self._accepted_csrs: set[str] = set()  # SignCertificate answered Accepted, to sign

    @_handles("BootNotification")
    def on_boot(self, charging_station: dict[str, Any], reason: str) -> Any:
        now = self._clock()
        self.fleet.record_boot(
            self.identity,
            vendor=charging_station.get("vendor_name"),
            model=charging_station.get("model"),
            firmware=charging_station.get("firmware_version"),
            reason=reason,
            now=now,
        )
        return call_result.BootNotification(
            current_time=now.isoformat(), interval=self._heartbeat_interval_s, status="Accepted"
        )

    @after("BootNotification")
    async def renew_certificate_if_due(self, **_: Any) -> None:
        """Ask a profile-3 station whose certificate expires soon for a renewal (A02)."""
        if not self.equipment.certificates.renewal_due(self.peer_certificate, now=self._clock()):
            return
        request = call21.TriggerMessage(requested_message="SignChargingStationCertificate")
        try:
            answer = await self.call(request)
        except OcppAdapterError as exc:
            log.warning("%s: renewal trigger failed: %s", self.identity, exc)
            return
        log.info("%s: certificate renewal asked for (%s)", self.identity, answer.status)

    @_handles("Heartbeat")
    def on_heartbeat(self) -> Any:
        now = self._clock()
        self.fleet.touch(self.identity, now=now)
        return call_result.Heartbeat(current_time=now.isoformat())

    @_handles("StatusNotification")
    def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int
    ) -> Any:
        self.fleet.record_status(
            self.identity,
            evse_id=evse_id,
            connector_status=connector_status,
            timestamp=self.fleet.timestamp(timestamp),
            now=self._clock(),
        )
        return call_result.StatusNotification()

    @_handles("TransactionEvent")
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> Any:
        self.fleet.record_transaction_event(
            self.identity,
            event_type=event_type,
            timestamp=self.fleet.timestamp(timestamp),
            trigger_reason=trigger_reason,
            seq_no=seq_no,
            transaction_info=transaction_info,
            evse_id=evse["id"] if evse else None,
            meter_value=meter_value,
            now=self._clock(),
        )
        if id_token is not None:
            info = self.equipment.tokens.authorize(id_token, now=self._clock())
            return call_result.TransactionEvent(id_token_info=info)
        return call_result.TransactionEvent()

    @_handles("Authorize")
    def on_authorize(self, id_token: dict[str, Any]) -> Any:
        self.fleet.touch(self.identity, now=self._clock())
        info = self.equipment.tokens.authorize(id_token, now=self._clock())
        return call_result.Authorize(id_token_info=info)

    @_handles("MeterValues")
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]]) -> Any:
        self.fleet.record_meter_values(
            self.identity, evse_id=evse_id, meter_value=meter_value, now=self._clock()
        )
        return call_result.MeterValues()

    @_handles("NotifyEVChargingNeeds")
    def on_charging_needs(
        self, evse_id: int, charging_needs: dict[str, Any], timestamp: str | None = None
    ) -> Any:
        now = self._clock()
        # read before answering: a value the fleet cannot take (a departure with no UTC
        # equivalent) is the station's error, a CALLERROR, not an "Accepted" dropped later
        limits_from_needs(charging_needs, received_at=now)
        if timestamp:
            self.fleet.timestamp(timestamp)
        self.fleet.touch(self.identity, now=now)
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @after("NotifyEVChargingNeeds")
    def record_charging_needs(
        self, evse_id: int, charging_needs: dict[str, Any], timestamp: str | None = None
    ) -> None:
        self.fleet.record_charging_needs(
            self.identity,
            evse_id=evse_id,
            needs=charging_needs,
            timestamp=self.fleet.timestamp(timestamp) if timestamp else None,
            now=self._clock(),
        )

    @_handles("NotifyPriorityCharging")
    def on_priority_charging(self, transaction_id: str, activated: bool, **_: Any) -> Any:
        """K21 / TC_K_118: while activated, the session takes part in no dispatch (a running
        one drops it and re-plans the rest); the answer has no status to refuse with."""
        known = self.fleet.record_priority_charging(
            self.identity, transaction_id=transaction_id, activated=activated, now=self._clock()
        )
        if not known:
            log.warning(
                "%s: priority charging for unknown transaction %s", self.identity, transaction_id
            )
        return call_result.NotifyPriorityCharging()

    @_handles("NotifyChargingLimit")
    def on_charging_limit(
        self,
        charging_limit: dict[str, Any],
        evse_id: int | None = None,
        charging_schedule: list[dict[str, Any]] | None = None,
    ) -> Any:
        self.fleet.record_charging_limit(
            self.identity,
            evse_id=evse_id or 0,
            source=charging_limit["charging_limit_source"],
            grid_critical=charging_limit.get("is_grid_critical"),
            schedules=charging_schedule,
            now=self._clock(),
        )
        return call_result.NotifyChargingLimit()

    @_handles("ReportChargingProfiles")
    def on_report_profiles(
        self,
        request_id: int,
        charging_limit_source: str,
        evse_id: int,
        charging_profile: list[dict[str, Any]],
        tbc: bool = False,
    ) -> Any:
        self.fleet.record_reported_profiles(
            self.identity,
            evse_id=evse_id,
            source=charging_limit_source,
            profiles=charging_profile,
            now=self._clock(),
        )
        report = self.profile_reports.get(request_id)
        if report is not None:
            report.add([{**p, "evse_id": evse_id} for p in charging_profile], tbc=tbc)
        return call_result.ReportChargingProfiles()

    @_handles("NotifyReport")
    def on_notify_report(
        self,
        request_id: int,
        generated_at: str,
        seq_no: int,
        report_data: list[dict[str, Any]] | None = None,
        tbc: bool = False,
    ) -> Any:
        self.fleet.touch(self.identity, now=self._clock())
        report = self.device_reports.get(request_id)
        if report is not None:
            report.add(list(report_data or []), tbc=tbc)
        return call_result.NotifyReport()

    @after("NotifyReport")
    async def record_report(
        self, report_data: list[dict[str, Any]] | None = None, **_: Any
    ) -> None:
        variables = device_model.from_report(report_data or [], now=self._clock())
        await self.equipment.save_variables(self.identity, variables)

    @_handles("SignCertificate")
    def on_sign_certificate(self, csr: str, certificate_type: str | None = None, **_: Any) -> Any:
        refusal = self.equipment.certificates.refuse_request(self.identity, certificate_type, csr)
        if refusal is not None:
            log.warning("%s: SignCertificate refused: %s", self.identity, refusal.reason)
            info = {"reason_code": refusal.reason_code, "additional_info": refusal.reason[:1024]}
            return call_result.SignCertificate(status="Rejected", status_info=info)
        self._accepted_csrs.add(csr)
        return call_result.SignCertificate(status="Accepted")

    @after("SignCertificate")
    async def issue_certificate(self, csr: str, **_: Any) -> None:
        """Sign an accepted request and send it (A02: CertificateSigned after the answer)."""
        if csr not in self._accepted_csrs:
            return
        self._accepted_csrs.discard(csr)
        try:
            chain, record = self.equipment.certificates.sign(self.identity, csr, now=self._clock())
        except CertificateRefused as exc:
            log.warning("%s: certificate signing request not signed: %s", self.identity, exc)
            return
        await self.equipment.save_certificates([record])
        request = call21.CertificateSigned(
            certificate_chain=chain, certificate_type="ChargingStationCertificate"
        )
        try:
            answer = await self.call(request)
        except OcppAdapterError as exc:
            log.warning("%s: CertificateSigned not delivered: %s", self.identity, exc)
            return
        log.info("%s: certificate %s %s", self.identity, record.serial, answer.status)

    @_handles("NotifyEvent")
    def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], tbc: bool = False
    ) -> Any:
        """Monitoring events are not used by the VPP: acknowledged, not kept."""
        self.fleet.touch(self.identity, now=self._clock())
        return call_result.NotifyEvent()

    @_handles("LogStatusNotification")
    def on_log_status(self, status: str, request_id: int | None = None) -> Any:
        self.fleet.touch(self.identity, now=self._clock())
        return call_result.LogStatusNotification()

    @_handles("FirmwareStatusNotification")
    def on_firmware_status(self, status: str, request_id: int | None = None) -> Any:
        self.fleet.touch(self.identity, now=self._clock())
        return call_result.FirmwareStatusNotification()

    @_handles("SecurityEventNotification")
    def on_security_event(self, type: str, timestamp: str, tech_info: str | None = None) -> Any:
        self.fleet.record_security_event(
            self.identity,
            event_type=type,
            timestamp=self.fleet.timestamp(timestamp),
            tech_info=tech_info,
            now=self._clock(),
        )
        return call_result.SecurityEventNotification()
