"""How the station answers a CSMS that manages it: TriggerMessage (F06), RequestStart/Stop
Transaction (F01-F03), ChangeAvailability (G03/G04), Reset (B11/B12), GetBaseReport (B07),
and its own certificate renewal (A02/A03).

Each command is decided first (no side effect: the answer) and carried out after the answer
was sent (the endpoint's ``@after`` hook calls it again with ``apply=True``): OCPP wants the
triggered message, the ``Ended`` event or the StatusNotification *after* the answer. Changes
to transactions are left to the next control tick (:class:`~v2g_gateway.station.remote.
RemoteControl`), which owns the snapshots they are built from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, Protocol

from v2g_common.ocpp21.messages import call as call21
from v2g_gateway.station.availability import Availability
from v2g_gateway.station.certificates import CertificateRejected, CertificateRenewal
from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.device_model import DeviceModel
from v2g_gateway.station.link import CsmsLink, Outgoing
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.ports import ControlView
from v2g_gateway.station.remote import PendingStart, RemoteControl, StopRequest
from v2g_gateway.station.settings import StationSettings
from v2g_gateway.station.transactions import StartInfo, meter_value
from v2g_gateway.station.variables import ITEMS_PER_MESSAGE

__all__ = ["ManagedStation", "StationManagement", "connector_status", "take_boot_reason"]

log = logging.getLogger(__name__)

#: The TriggerMessage requests this station carries out (others: NotImplemented).
TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
        "TransactionEvent",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "SignChargingStationCertificate",
    }
)
_NEXT_BOOT_REASON = "next_boot_reason"
_RESET_IDLE_W = 50.0
_CERTIFICATE_CHECK_S = 60.0


class ManagedStation(Protocol):
    """What management needs from the running station."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def transactions(self) -> dict[int, ActiveTransaction]: ...

    def view(self, evse_id: int) -> ControlView: ...

    def profiles_changed(self) -> None: ...

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None: ...


def take_boot_reason(journal: TransactionJournal) -> str:
    """The reason of this run's first BootNotification (RemoteReset after a reset)."""
    reason = journal.get(_NEXT_BOOT_REASON) or "PowerUp"
    if reason != "PowerUp":
        journal.put(_NEXT_BOOT_REASON, "PowerUp")
    return reason


def connector_status(view: ControlView, *, operative: bool) -> str:
    """Faulted on a hardware trip (the comms-loss fail-safe is not a fault of the EVSE),
    Unavailable while inoperative, else Occupied or Available."""
    if view.trip_code is not None:
        return "Faulted"
    if not operative:
        return "Unavailable"
    return "Occupied" if view.ev_connected else "Available"


class StationManagement:
    """The station's side of the CSMS's management commands."""

    def __init__(
        self,
        config: StationConfig,
        *,
        station: ManagedStation,
        settings: StationSettings,
        outgoing: Outgoing,
        link: CsmsLink,
        remote: RemoteControl,
        availability: Availability,
        device_model: DeviceModel,
        renewal: CertificateRenewal,
        on_reset: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self._config = config
        self._station = station
        self._settings = settings
        self._out = outgoing
        self._link = link
        self.remote = remote
        self.availability = availability
        self.device_model = device_model
        self._renewal = renewal
        self._on_reset = on_reset
        #: EVSEs being reset (no energy, no new transaction); ``None`` in it: the station.
        self.resetting: set[int] = set()
        self._scheduled_reset: set[int | None] = set()
        self._certificate_checked_s: float | None = None
        self._renewed = False

    # -- availability ---------------------------------------------------------------------
    def operative(self, evse_id: int) -> bool:
        return self.availability.operative(evse_id) and evse_id not in self.resetting

    def status(self, evse_id: int, view: ControlView) -> str:
        return connector_status(view, operative=self.operative(evse_id))

    def change_availability(
        self, operational_status: str, evse: Mapping[str, Any] | None, *, apply: bool
    ) -> str:
        evse_id = None if evse is None else int(evse["id"])
        if evse_id == 0:
            evse_id = None
        if evse_id is not None and not self.availability.knows(evse_id):
            return "Rejected"
        busy = set(self._station.transactions())
        if not apply:
            targets = [evse_id] if evse_id is not None else self._evse_ids()
            going_down = operational_status == "Inoperative"
            return "Scheduled" if going_down and any(t in busy for t in targets) else "Accepted"
        status = self.availability.request(operational_status == "Operative", evse_id, busy=busy)
        self._station.profiles_changed()  # the tick sends the StatusNotifications
        return status

    def _evse_ids(self) -> list[int]:
        return [e.id for e in self._config.evses]

    # -- remote start / stop --------------------------------------------------------------
    def request_start(
        self,
        *,
        id_token: Mapping[str, Any],
        remote_start_id: int,
        evse_id: int | None,
        charging_profile: Mapping[str, Any] | None,
        apply: bool,
    ) -> tuple[str, str | None]:
        """(status, transactionId of a transaction it authorizes)."""
        evse = evse_id if evse_id is not None else self._first_startable()
        if evse is None or not self.availability.knows(evse) or not self.operative(evse):
            return "Rejected", None
        if self.remote.held(evse):
            return "Rejected", None
        running = self._station.transactions().get(evse)
        if apply:
            timeout_s = self._settings.ev_connection_timeout_s
            pending = PendingStart(
                StartInfo("RemoteStart", dict(id_token), remote_start_id),
                dict(charging_profile) if charging_profile is not None else None,
                self._station.monotonic() + timeout_s,
            )
            if running is not None:
                self.remote.authorize_running(evse, pending)
            else:
                self.remote.start_when_plugged(evse, pending)
            self._station.profiles_changed()
        return "Accepted", None if running is None else running.transaction_id

    def _first_startable(self) -> int | None:
        busy = self._station.transactions()
        for evse_id in self._evse_ids():
            if evse_id not in busy and self.operative(evse_id):
                return evse_id
        return None

    def request_stop(self, transaction_id: str, *, apply: bool) -> str:
        for evse_id, tx in self._station.transactions().items():
            if tx.transaction_id == transaction_id:
                if apply:
                    self.remote.stop(evse_id, StopRequest("RemoteStop", "Remote"))
                    self._station.profiles_changed()
                return "Accepted"
        return "Rejected"

    # -- trigger --------------------------------------------------------------------------
    def trigger(self, requested: str, evse: Mapping[str, Any] | None, *, apply: bool) -> str:
        if requested not in TRIGGERABLE:
            return "NotImplemented"
        evse_id = None if evse is None else int(evse["id"])
        targets = self._evse_ids() if evse_id in (None, 0) else [evse_id]
        if evse_id not in (None, 0) and not self.availability.knows(evse_id):
            return "Rejected"
        status = self._trigger_status(requested, targets)
        if apply and status == "Accepted":
            self._do_trigger(requested, targets)
        return status

    def _trigger_status(self, requested: str, targets: list[int]) -> str:
        if requested == "BootNotification" and self._link.accepted:
            return "Rejected"  # already accepted (F06.FR.17)
        if requested == "TransactionEvent":
            running = self._station.transactions()
            return "Accepted" if any(t in running for t in targets) else "Rejected"
        if requested == "SignChargingStationCertificate" and not self._renewal.enabled:
            return "Rejected"
        return "Accepted"

    def _do_trigger(self, requested: str, targets: list[int]) -> None:
        now = self._station.now()
        if requested == "BootNotification":
            self._link.boot_now()
        elif requested == "Heartbeat":
            self._out.send(call21.Heartbeat())
        elif requested == "StatusNotification":
            for evse_id in targets:
                self._out.statuses[evse_id] = self.status(evse_id, self._station.view(evse_id))
            self._out.nudge()
        elif requested == "MeterValues":
            for evse_id in targets:
                value = meter_value(self._station.view(evse_id), now=now, context="Trigger")
                self._out.send(call21.MeterValues(evse_id=evse_id, meter_value=[value]))
        elif requested == "TransactionEvent":
            for evse_id in targets:
                self.remote.trigger_event(evse_id)
            self._station.profiles_changed()
        elif requested == "LogStatusNotification":
            self._out.send(call21.LogStatusNotification(status="Idle"))
        elif requested == "FirmwareStatusNotification":
            self._out.send(call21.FirmwareStatusNotification(status="Idle"))
        else:
            self.request_certificate(now=now)

    def queued_events(self, transaction_id: str | None) -> bool:
        """TransactionEvents not yet delivered (of one transaction, when given)."""
        return self._out.journal.pending(transaction_id) > 0

    # -- reports --------------------------------------------------------------------------
    def base_report(self, request_id: int, report_base: str, *, apply: bool) -> str:
        if report_base not in ("ConfigurationInventory", "FullInventory", "SummaryInventory"):
            return "NotSupported"
        if apply:
            self._queue_report(request_id, self.device_model.report(report_base))
        return "Accepted"

    def _queue_report(self, request_id: int, data: list[dict[str, Any]]) -> None:
        generated_at = self._station.now().isoformat()
        chunks = [data[i : i + ITEMS_PER_MESSAGE] for i in range(0, len(data), ITEMS_PER_MESSAGE)]
        for seq_no, chunk in enumerate(chunks or [[]]):
            self._out.send(
                call21.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=chunk or None,
                    tbc=seq_no < len(chunks) - 1,
                )
            )

    # -- reset ----------------------------------------------------------------------------
    def reset(self, reset_type: str, evse_id: int | None, *, apply: bool) -> str:
        if reset_type not in ("Immediate", "OnIdle"):
            return "Rejected"  # ImmediateAndResume: transactions do not survive our reset
        if evse_id is not None and not self.availability.knows(evse_id):
            return "Rejected"
        running = self._station.transactions()
        busy = running if evse_id is None else {k: v for k, v in running.items() if k == evse_id}
        status = "Scheduled" if busy and reset_type == "OnIdle" else "Accepted"
        if apply:
            if status == "Scheduled":
                self._scheduled_reset.add(evse_id)
            else:
                self._begin_reset(evse_id)
        return status

    def _begin_reset(self, evse_id: int | None) -> None:
        targets = self._evse_ids() if evse_id is None else [evse_id]
        for target in targets:
            if target in self._station.transactions():
                self.remote.stop(target, StopRequest("ResetCommand", "ImmediateReset", hold=False))
        self.resetting.update(targets)
        self._station.profiles_changed()
        name = "station-reset" if evse_id is None else f"evse-reset[{evse_id}]"
        self._station.spawn(self._carry_out_reset(evse_id, targets), name)

    def on_tick(self) -> None:
        """Start a scheduled (OnIdle) reset once its transactions ended; check the client
        certificate's expiry now and then."""
        running = self._station.transactions()
        for evse_id in list(self._scheduled_reset):
            targets = self._evse_ids() if evse_id is None else [evse_id]
            if not any(t in running for t in targets):
                self._scheduled_reset.discard(evse_id)
                self._begin_reset(evse_id)
        now_s = self._station.monotonic()
        checked = self._certificate_checked_s
        if self._link.accepted and (checked is None or now_s - checked >= _CERTIFICATE_CHECK_S):
            self._certificate_checked_s = now_s
            if self._renewal.due(now=self._station.now()):
                self.request_certificate(now=self._station.now())

    async def _carry_out_reset(self, evse_id: int | None, targets: list[int]) -> None:
        """Ramp to 0 (the leases are 0 while resetting), let the Ended events go, then
        restart the station (or give the EVSE back)."""
        try:
            async with asyncio.timeout(self._config.reset_ramp_timeout_s):
                while not self._settled(targets):  # noqa: ASYNC110 - polled control snapshots
                    await asyncio.sleep(self._config.control_tick_s)
        except TimeoutError:
            log.warning(
                "reset: power not at 0 W after %.0f s; going on", self._config.reset_ramp_timeout_s
            )
        if evse_id is not None:
            log.info("EVSE %s reset", evse_id)
            self.resetting.difference_update(targets)
            self._station.profiles_changed()
            return
        log.warning("station reset requested by the CSMS: restarting")
        self._out.journal.put(_NEXT_BOOT_REASON, "RemoteReset")
        await self._out.durable()
        if self._on_reset is not None:
            await self._on_reset()
            return
        self.resetting.difference_update(targets)
        await self._link.restart("RemoteReset")

    def _settled(self, targets: list[int]) -> bool:
        running = self._station.transactions()
        if any(t in running for t in targets) or self._out.journal.pending():
            return False
        return all(abs(self._station.view(t).power_w) < _RESET_IDLE_W for t in targets)

    # -- certificates ---------------------------------------------------------------------
    def request_certificate(self, *, now: datetime) -> None:
        """Queue a SignCertificate for a new client certificate."""
        csr = self._renewal.signing_request(now=now)
        request = call21.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate")
        self._out.send(request, self._signing_answered)
        log.info("asked the CSMS to sign a new client certificate")

    @staticmethod
    def _signing_answered(answer: Any) -> None:
        if answer.status != "Accepted":
            log.warning("CSMS refused to sign our certificate: %s", answer.status_info)

    def certificate_signed(
        self, chain: str, certificate_type: str | None
    ) -> tuple[str, str | None]:
        """Install a CertificateSigned chain: (status, reason when Rejected)."""
        if certificate_type not in (None, "ChargingStationCertificate"):
            return "Rejected", f"{certificate_type} is not supported"
        try:
            self._renewal.install(chain, now=self._station.now())
        except CertificateRejected as exc:
            log.error("CertificateSigned refused: %s", exc.reason)
            self._out.send(
                call21.SecurityEventNotification(
                    type="InvalidChargingStationCertificate",
                    timestamp=self._station.now().isoformat(),
                    tech_info=exc.reason[:255],
                )
            )
            return "Rejected", exc.reason
        self._renewed = True
        return "Accepted", None

    def renewed_certificate(self) -> bool:
        """A new certificate was installed since the last call (then reconnect)."""
        renewed, self._renewed = self._renewed, False
        return renewed

    async def use_new_certificate(self) -> None:
        """Reconnect so the next TLS handshake presents the certificate just installed."""
        await self._link.reconnect()
