"""The station's link to its CSMS: connect (security profile 1/2/3, ``ocpp2.1`` with an
optional ``ocpp2.0.1`` fallback), reconnect with exponential backoff and full jitter,
BootNotification (honouring Pending/Rejected and the interval; a TriggerMessage cuts a
Pending wait short), Heartbeat, and one sender that delivers, in order: StatusNotifications,
the TransactionEvent outbox, NotifyEVChargingNeeds, then one-off messages in the order they
were queued (ReportChargingProfiles, NotifyReport, MeterValues, Heartbeat, SignCertificate...).

:meth:`CsmsLink.reconnect` ends the session (the next connection presents a newly installed
client certificate); :meth:`CsmsLink.restart` also boots again with the given reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from v2g_common.ocpp21 import OcppCallError, OcppTimeout, connect_to_csms
from v2g_common.ocpp21.errors import (
    OcppAdapterError,
    OcppConnectionClosed,
    RequestInvalid,
    ResponseInvalid,
)
from v2g_common.ocpp21.messages import call as call21
from v2g_common.pki import client_context
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.endpoint import StationEndpoint, StationServices
from v2g_gateway.station.errors import ProfileRejected, StationStateError
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.settings import StationSettings

__all__ = ["CsmsLink", "Outgoing", "backoff_s", "retry_after_s"]

log = logging.getLogger(__name__)

#: What ends a session: the link itself, or a CSMS whose answers we cannot use.
_LINK_ERRORS = (ConnectionClosed, OcppConnectionClosed, OcppTimeout, OcppCallError, ResponseInvalid)
_V21_ONLY_REASONS = {"OperationModeChanged": "ChargingRateChanged"}


class _LinkDown(Exception):
    """The session ended (closed, timed out, or the CSMS refused us)."""


def backoff_s(
    attempt: int,
    *,
    initial_s: float,
    max_s: float,
    factor: float,
    jitter: float,
    rng: random.Random,
    asked_s: float | None = None,
) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): exponential, capped, with
    ``jitter`` of it drawn at random so a fleet does not reconnect in lockstep; at least
    ``asked_s`` (a saturated CSMS's ``Retry-After``), itself capped at ``max_s``."""
    base = min(max_s, initial_s * factor**attempt)
    own = base * (1.0 - jitter) + base * jitter * rng.random()
    return own if asked_s is None else max(own, min(asked_s, max_s))


def retry_after_s(exc: BaseException) -> float | None:
    """The seconds a refused handshake's ``Retry-After`` asks for (503 when the CSMS is
    saturated), if it gives a number."""
    if not isinstance(exc, InvalidStatus):
        return None
    value = exc.response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


#: Called with the CSMS's answer to a one-off message (for SignCertificate's status).
OnAnswer = Callable[[Any], None]
#: How long the sender waits before trying again to make the outbox durable.
_FLUSH_RETRY_S = 1.0


async def _already_durable() -> None:
    """For an Outgoing without a StateFlusher (tests of the link alone)."""


@dataclass
class Outgoing:
    """Messages waiting for the link, besides the TransactionEvent outbox.

    ``statuses`` and ``needs`` keep the latest per EVSE; ``messages`` are one-off CALLs
    (``call`` dataclasses), each with an optional callback for its answer. A one-off message
    whose session ends before its answer is not sent again (the CSMS can ask again)."""

    journal: TransactionJournal
    statuses: dict[int, str] = field(default_factory=dict)
    needs: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: deque[tuple[Any, OnAnswer | None]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Makes every commit so far durable (StateFlusher.flushed); awaited before an event
    #: from the outbox goes out, so the CSMS never sees a seqNo a power cut could take back.
    durable: Callable[[], Awaitable[None]] = _already_durable

    def nudge(self) -> None:
        self.wake.set()

    def send(self, request: Any, on_answer: OnAnswer | None = None) -> None:
        self.messages.append((request, on_answer))
        self.wake.set()


class CsmsLink:
    """Runs forever: one websocket session after another."""

    def __init__(
        self,
        config: StationConfig,
        *,
        services: StationServices,
        outgoing: Outgoing,
        settings: StationSettings,
        on_online: Callable[[bool], None],
        current_statuses: Callable[[], dict[int, str]],
        boot_reason: str = "PowerUp",
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._services = services
        self._out = outgoing
        self._settings = settings
        self._on_online = on_online
        self._current_statuses = current_statuses
        self._rng = rng or random.Random()
        self._booted = False
        self._boot_reason = boot_reason
        self._boot_now = asyncio.Event()
        self._last_exchange_s = 0.0
        self._failures: dict[int, int] = {}
        self._flush_failing = False
        self.flush_failures = 0  # flushes of the outbox the disk refused
        self._session_accepted = False
        self._connection: Any = None
        self.subprotocol: str | None = None

    @property
    def accepted(self) -> bool:
        """The CSMS accepted our BootNotification (this run of the station)."""
        return self._booted

    def boot_now(self) -> None:
        """TriggerMessage(BootNotification) while Pending: send it without waiting."""
        self._boot_reason = "Triggered"
        self._boot_now.set()

    async def reconnect(self) -> None:
        """End the session; the next connection is opened as usual (new TLS context)."""
        if self._connection is not None:
            await self._connection.close()

    async def restart(self, boot_reason: str) -> None:
        """End the session and boot again on the next one (a station reset)."""
        self._booted = False
        self._boot_reason = boot_reason
        await self.reconnect()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                connection = await self._connect()
            except (OSError, InvalidHandshake, TimeoutError, OcppAdapterError) as exc:
                delay = self._delay(attempt, asked_s=retry_after_s(exc))
                # Log the first failure of a run of them; the rest at debug level.
                level = logging.WARNING if attempt == 0 else logging.DEBUG
                log.log(
                    level,
                    "CSMS %s unreachable (%s); retrying with backoff (next in %.1f s)",
                    self._config.csms_url,
                    exc,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if attempt:
                log.info("CSMS reachable again after %d failed attempt(s)", attempt)
            self._session_accepted = False
            self._connection = connection
            try:
                await self._session(connection)
            finally:
                self._connection = None
                self._on_online(False)
                await connection.close()
            # A session that never got as far as an accepted boot counts as a failed attempt,
            # so a CSMS that accepts the socket but refuses us is not hammered.
            attempt = 0 if self._session_accepted else attempt + 1
            await asyncio.sleep(self._delay(attempt))

    def _delay(self, attempt: int, *, asked_s: float | None = None) -> float:
        r = self._config.reconnect
        return backoff_s(
            attempt,
            initial_s=r.initial_s,
            max_s=r.max_s,
            factor=r.factor,
            jitter=r.jitter,
            rng=self._rng,
            asked_s=asked_s,
        )

    async def _connect(self) -> Any:
        cfg = self._config
        return await connect_to_csms(
            cfg.csms_url,
            cfg.identity,
            ssl=self._ssl_context(),
            password=cfg.password if cfg.security_profile in (1, 2) else None,
            subprotocols=cfg.subprotocols,
            open_timeout_s=cfg.open_timeout_s,
            ping_interval=self._settings.ws_ping_interval_s,
            ping_timeout=cfg.ws_ping_timeout_s,
        )

    def _ssl_context(self) -> ssl.SSLContext | None:
        cfg = self._config
        if cfg.security_profile == 1:
            return None
        if cfg.ca_cert is None:
            return ssl.create_default_context()
        if cfg.security_profile == 3:
            return client_context(cfg.ca_cert, cert=cfg.client_cert, key=cfg.client_key)
        return client_context(cfg.ca_cert)

    async def _session(self, connection: Any) -> None:
        endpoint = StationEndpoint(
            self._config.identity,
            connection,
            services=self._services,
            response_timeout_s=self._config.response_timeout_s,
        )
        self.subprotocol = endpoint.subprotocol
        log.info("connected to CSMS (%s)", endpoint.subprotocol)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._receive(endpoint), name="station-receive")
                tasks.create_task(self._serve(endpoint), name="station-session")
        except* _LinkDown:
            log.warning("CSMS link down")

    async def _receive(self, endpoint: StationEndpoint) -> None:
        await endpoint.run()
        raise _LinkDown

    async def _serve(self, endpoint: StationEndpoint) -> None:
        try:
            await self._boot(endpoint)
            for evse_id, status in self._current_statuses().items():
                self._out.statuses[evse_id] = status
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._heartbeat(endpoint), name="station-heartbeat")
                tasks.create_task(self._send_loop(endpoint), name="station-sender")
                tasks.create_task(self._pull_dynamic(endpoint), name="station-dynamic-pull")
        except* _LINK_ERRORS as group:
            log.warning("CSMS exchange failed: %s", group.exceptions[0])
            raise _LinkDown from None

    async def _exchange(self, endpoint: StationEndpoint, request: Any) -> Any:
        result = await endpoint.call(request)
        self._exchanged()
        return result

    async def _boot(self, endpoint: StationEndpoint) -> None:
        if self._booted:
            self._session_accepted = True
            self._on_online(True)
            return
        cfg = self._config
        station = {"model": cfg.model, "vendor_name": cfg.vendor_name}
        if cfg.serial_number:
            station["serial_number"] = cfg.serial_number
        if cfg.firmware_version:
            station["firmware_version"] = cfg.firmware_version
        while True:
            self._boot_now.clear()
            response = await endpoint.call(
                call21.BootNotification(charging_station=station, reason=self._boot_reason)
            )
            interval = float(response.interval) if response.interval > 0 else None
            if response.status == "Accepted":
                self._booted = self._session_accepted = True
                self._boot_reason = "PowerUp"
                if interval:
                    self._settings.heartbeat_interval_s = interval
                self._exchanged()
                self._on_online(True)
                log.info(
                    "BootNotification accepted (heartbeat %.0f s)",
                    self._settings.heartbeat_interval_s,
                )
                return
            if response.status == "Pending":
                # The CSMS is there and may configure us; it is contact, not acceptance.
                self._exchanged()
                self._on_online(True)
            wait_s = interval or self._settings.heartbeat_interval_s
            log.warning("BootNotification %s; retry in %.0f s", response.status, wait_s)
            try:
                async with asyncio.timeout(wait_s):
                    await self._boot_now.wait()
            except TimeoutError:
                pass

    def _exchanged(self) -> None:
        """A CALLRESULT arrived: the heartbeat timer restarts and the control loop hears of it."""
        self._last_exchange_s = asyncio.get_running_loop().time()
        self._services.contact()

    async def _heartbeat(self, endpoint: StationEndpoint) -> None:
        loop = asyncio.get_running_loop()
        while True:
            idle_s = min(self._settings.heartbeat_interval_s, self._config.contact_probe_interval_s)
            wait_s = self._last_exchange_s + idle_s - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                continue
            await self._exchange(endpoint, call21.Heartbeat())

    async def _pull_dynamic(self, endpoint: StationEndpoint) -> None:
        """PullDynamicScheduleUpdate for each Dynamic profile ``dynUpdateInterval`` after its
        last update; the answer's values are applied like an UpdateDynamicSchedule."""
        while True:
            now = self._services.now()
            due = self._services.smart.dynamic_updates_due(now=now)
            for profile_id in due:
                await self._pull_one(endpoint, profile_id)
            await asyncio.sleep(1.0)

    async def _pull_one(self, endpoint: StationEndpoint, profile_id: int) -> None:
        svc = self._services
        try:
            answer = await self._exchange(
                endpoint, call21.PullDynamicScheduleUpdate(charging_profile_id=profile_id)
            )
        except (OcppCallError, RequestInvalid) as exc:
            log.warning("PullDynamicScheduleUpdate %s failed: %s", profile_id, exc)
            svc.smart.touch_dynamic(profile_id, now=svc.now())
            return
        update = answer.schedule_update if answer.status == "Accepted" else None
        try:
            if update:
                svc.smart.update_dynamic(
                    profile_id, update, transactions=svc.transactions(), now=svc.now()
                )
                svc.profiles_changed()
            else:
                svc.smart.touch_dynamic(profile_id, now=svc.now())
        except ProfileRejected as exc:
            log.warning("dynamic update for profile %s refused: %s", profile_id, exc)
            svc.smart.touch_dynamic(profile_id, now=svc.now())

    async def _send_loop(self, endpoint: StationEndpoint) -> None:
        while True:
            self._out.wake.clear()
            if not await self._send_next(endpoint):
                await self._out.wake.wait()

    async def _send_next(self, endpoint: StationEndpoint) -> bool:
        out = self._out
        if out.statuses:
            evse_id, status = next(iter(out.statuses.items()))
            await self._exchange_or_drop(endpoint, self._status_request(evse_id, status))
            if out.statuses.get(evse_id) == status:
                del out.statuses[evse_id]
            return True
        event = out.journal.peek()
        if event is not None:
            if await self._outbox_durable():
                await self._send_event(endpoint, event.position, event.payload)
            return True
        if out.needs:
            evse_id, request = next(iter(out.needs.items()))
            await self._exchange_or_drop(endpoint, self._needs_for_version(request))
            if out.needs.get(evse_id) is request:
                del out.needs[evse_id]
            return True
        if out.messages:
            request, on_answer = out.messages.popleft()
            answer = await self._exchange_or_drop(endpoint, request)
            if answer is not None and on_answer is not None:
                on_answer(answer)
            return True
        return False

    async def _outbox_durable(self) -> bool:
        """False (after a pause, logged once per episode) while the disk refuses the flush."""
        try:
            await self._out.durable()
        except StationStateError as exc:
            self.flush_failures += 1
            if not self._flush_failing:
                log.error("TransactionEvents held back: the state database is not durable: %s", exc)
            self._flush_failing = True
            await asyncio.sleep(_FLUSH_RETRY_S)
            return False
        if self._flush_failing:
            self._flush_failing = False
            log.info("state database durable again; sending TransactionEvents")
        return True

    async def _exchange_or_drop(self, endpoint: StationEndpoint, request: Any) -> Any:
        """Send a message that is not worth a retry loop: a CALLERROR or a payload the
        negotiated version cannot carry is logged and the message dropped (None)."""
        try:
            return await self._exchange(endpoint, request)
        except (OcppCallError, RequestInvalid) as exc:
            log.error("%s not delivered: %s", type(request).__name__, exc)
            return None

    def _needs_for_version(self, request: dict[str, Any]) -> Any:
        """2.0.1 knows neither V2X parameters nor BPT modes: send what it can carry."""
        if self.subprotocol != "ocpp2.0.1":
            return call21.NotifyEVChargingNeeds(**request)
        needs = request["charging_needs"]
        plain = needs["available_energy_transfer"][-1]
        legacy = {"requested_energy_transfer": plain}
        if "departure_time" in needs:
            legacy["departure_time"] = needs["departure_time"]
        return call21.NotifyEVChargingNeeds(evse_id=request["evse_id"], charging_needs=legacy)

    def _status_request(self, evse_id: int, status: str) -> Any:
        connector_id = self._config.evse(evse_id).connector_id
        return call21.StatusNotification(
            timestamp=self._services.now().isoformat(),
            connector_status=status,
            evse_id=evse_id,
            connector_id=connector_id,
        )

    async def _send_event(
        self, endpoint: StationEndpoint, position: int, payload: dict[str, Any]
    ) -> None:
        request = call21.TransactionEvent(**self._for_version(payload))
        try:
            await self._exchange(endpoint, request)
        except RequestInvalid as exc:
            # Our own payload breaks the schema: it can never be sent; keep the rest moving.
            log.error("TransactionEvent %s is invalid, dropped: %s", payload, exc)
        except OcppCallError as exc:
            failures = self._failures.get(position, 0) + 1
            self._failures[position] = failures
            if failures < self._settings.transaction_message_attempts:
                log.warning(
                    "TransactionEvent seqNo %s refused (%s); retrying", payload.get("seq_no"), exc
                )
                await asyncio.sleep(self._settings.transaction_message_retry_interval_s)
                return
            log.error("TransactionEvent %s dropped after %d CALLERRORs: %s", payload, failures, exc)
        self._failures.pop(position, None)
        self._out.journal.ack(position)

    def _for_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        """2.0.1 has no operationMode nor OperationModeChanged: say what it can."""
        if self.subprotocol != "ocpp2.0.1":
            return payload
        info = {k: v for k, v in payload["transaction_info"].items() if k != "operation_mode"}
        reason = _V21_ONLY_REASONS.get(payload["trigger_reason"], payload["trigger_reason"])
        return {**payload, "transaction_info": info, "trigger_reason": reason}
