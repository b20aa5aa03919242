"""The OCPP 2.1 charging station as one supervisor component::

    async with ChargingStation(config.station, control=channel, ev_link=ev, clock=SystemClock()):
        await stop.wait()

It owns a TaskGroup with two tasks: ``station-link`` (connection, boot, heartbeat, sender; see
:mod:`~v2g_gateway.station.link`) and ``station-control`` (every ``control_tick_s``: composite
schedule -> setpoint lease, transactions and meter values from the control snapshot, the EV's
charging needs), plus a task per reset in progress. The lease is short and renewed each tick,
so a station that stops ticking stops the discharge; contact is reported to the control loop
only on real CSMS exchanges, so its comms-loss fail-safe sees a dead link.

The CSMS's management commands (TriggerMessage, device model, Reset, remote start/stop,
availability, certificate renewal) are answered by :class:`~v2g_gateway.station.management.
StationManagement`; what they change in the transactions happens here, on the next tick.

A Reset of the whole station ramps to 0 W, ends the transactions and then calls ``on_reset``
(the daemon's: stop the control loop, contactor open, and exit so systemd restarts it);
without one the station restarts its own session and boots again with reason RemoteReset.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from v2g_common.ocpp21.messages import call as call21
from v2g_gateway.control.ports import EvSession, EvseTargets
from v2g_gateway.station.afrr import AfrrSignals, afrr_target_w
from v2g_gateway.station.availability import Availability
from v2g_gateway.station.certificates import CertificateRenewal
from v2g_gateway.station.composite import (
    ActiveTransaction,
    CompositeSchedule,
    LocalLimits,
    target_power_w,
)
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.device_model import DeviceModel
from v2g_gateway.station.durability import StateFlusher
from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.frequency_profiles import response_bounds_w
from v2g_gateway.station.link import CsmsLink, Outgoing
from v2g_gateway.station.management import StationManagement, take_boot_reason
from v2g_gateway.station.needs import allows_discharge, charging_needs_request
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.ports import (
    ControlPort,
    ControlView,
    EvChargingNeeds,
    EvLink,
    SetpointLease,
    StationClock,
    SystemClock,
)
from v2g_gateway.station.profiles import parse_datetime
from v2g_gateway.station.remote import RemoteControl
from v2g_gateway.station.settings import StationSettings
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import (
    ProfileStore,
    WrittenVariables,
    open_state_db,
    state_db_path,
)
from v2g_gateway.station.transactions import EvseTransactions, StartInfo, TickInputs
from v2g_gateway.station.variables import StationFacts, station_variables

__all__ = ["ChargingStation"]

log = logging.getLogger(__name__)

_LAST_CONTACT = "last_csms_contact"
_NEEDS_READ_TIMEOUT_S = 2.0
_CONTACT_PERSIST_S = 5.0


class ChargingStation:
    """One charging station (one control loop per EVSE). Implements ``StationServices``."""

    def __init__(
        self,
        config: StationConfig,
        *,
        control: ControlPort | Mapping[int, ControlPort],
        ev_link: EvLink | Mapping[int, EvLink] | None = None,
        clock: StationClock | None = None,
        rng: random.Random | None = None,
        on_reset: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.settings = StationSettings.from_config(config)
        self._on_reset = on_reset
        self._spawned: set[asyncio.Task[None]] = set()
        self._controls = _per_evse(config, control)
        self._ev_links = {} if ev_link is None else _per_evse(config, ev_link)
        self._clock = clock or SystemClock()
        self._rng = rng
        self._online = False
        # Outage timing runs on the monotonic clock (a wall clock stepped by NTP must not
        # stretch or shrink maxOfflineDuration); wall times are kept for persistence only.
        self._offline_start_s = 0.0
        self._last_contact_s = 0.0
        self._last_contact: datetime | None = None
        self._persisted_contact: datetime | None = None
        self._needs: dict[int, EvChargingNeeds] = {}
        self._discharge_allowed: dict[int, bool] = {}
        self._ev_link_failed: set[int] = set()
        self._renegotiate: set[int] = set()
        self._statuses: dict[int, str] = {}
        self._poke = asyncio.Event()
        self.afrr = AfrrSignals(valid_for_s=config.afrr_signal_valid_for_s)
        self._tasks: asyncio.TaskGroup | None = None

    # --- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> ChargingStation:
        self._db = open_state_db(self.config.state_dir)
        self.flusher = StateFlusher(state_db_path(self.config.state_dir))
        self.journal = TransactionJournal(self._db)
        self.smart = SmartCharging(
            self.config, ProfileStore(self._db), may_discharge=self._may_discharge
        )
        self._trackers = {
            e.id: EvseTransactions(
                self.journal,
                evse_id=e.id,
                connector_id=e.connector_id,
                sampled_interval_s=self.config.sampled_data_interval_s,
                rate_change_threshold_w=self.config.rate_change_threshold_w,
            )
            for e in self.config.evses
        }
        stored = self.journal.get(_LAST_CONTACT)
        # Offline from the last contact we know of (conservative across a restart).
        now = self._clock.now()
        last = parse_datetime(stored) if stored else now
        self._last_contact = self._persisted_contact = last
        # Offline since the last contact we know of (conservative across a restart); one
        # "in the future" (clock set back, no RTC) counts as now.
        elapsed_s = max(0.0, (now - last).total_seconds())
        self._last_contact_s = self._offline_start_s = self._clock.monotonic() - elapsed_s
        self.outgoing = Outgoing(self.journal, durable=self.flusher.flushed)
        self.link = CsmsLink(
            self.config,
            services=self,
            outgoing=self.outgoing,
            settings=self.settings,
            on_online=self._set_online,
            current_statuses=self._current_statuses,
            boot_reason=take_boot_reason(self.journal),
            rng=self._rng,
        )
        self.management = self._management()
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._link_task = self._tasks.create_task(self.link.run(), name="station-link")
        self._control_task = self._tasks.create_task(self._control_loop(), name="station-control")
        return self

    def _management(self) -> StationManagement:
        availability = Availability(self.journal, (e.id for e in self.config.evses))
        facts = StationFacts(
            now=self.now,
            station_state=lambda: (
                "Available" if availability.station_operative() else "Unavailable"
            ),
            evse_state=lambda evse_id: self.management.status(evse_id, self.view(evse_id)),
            evse_operative=availability.operative,
            sampled_interval_changed=self._sampled_interval_changed,
        )
        variables = station_variables(self.config, self.settings, facts)
        renewal = CertificateRenewal(self.config, self.settings)
        if self.config.security_profile == 3:
            renewal.finish_interrupted_install()  # before the first TLS handshake
        return StationManagement(
            self.config,
            station=self,
            settings=self.settings,
            outgoing=self.outgoing,
            link=self.link,
            remote=RemoteControl(),
            availability=availability,
            device_model=DeviceModel(variables, WrittenVariables(self._db)),
            renewal=renewal,
            on_reset=self._on_reset,
        )

    def _sampled_interval_changed(self) -> None:
        for tracker in self._trackers.values():
            tracker.sampled_interval_s = self.settings.sampled_data_interval_s

    async def __aexit__(self, *exc: Any) -> None:
        assert self._tasks is not None
        self._link_task.cancel()
        self._control_task.cancel()
        for task in self._spawned:
            task.cancel()
        try:
            # The body's own exception propagates as it is; a task's crash comes as a group.
            await self._tasks.__aexit__(None, None, None)
        finally:
            for control in self._controls.values():
                control.grant_lease(SetpointLease(0.0, self.config.lease_valid_for_s))
            self._persist_contact(force=True)
            try:
                self.flusher.close()
            finally:
                self._db.close()

    # --- StationServices ------------------------------------------------------------------
    def now(self) -> datetime:
        return self._clock.now()

    def contact(self) -> None:
        self._last_contact = self._clock.now()
        self._last_contact_s = self._clock.monotonic()
        for control in self._controls.values():
            control.mark_csms_contact()

    def transactions(self) -> dict[int, ActiveTransaction]:
        return {
            evse_id: t.transaction
            for evse_id, t in self._trackers.items()
            if t.transaction is not None
        }

    def offline_since(self) -> datetime | None:
        """When the station went offline, or None while it is online.

        A link that is up but has carried nothing for two contact-probe intervals (a probe
        went unanswered) counts as offline from the last contact: a silently dead TCP
        connection must not keep a profile applying until websockets notices."""
        now_s = self._clock.monotonic()
        if not self._online:
            return self._clock.now() - timedelta(seconds=now_s - self._offline_start_s)
        silent_s = now_s - self._last_contact_s
        if silent_s > 2 * self.config.contact_probe_interval_s:
            return self._clock.now() - timedelta(seconds=silent_s)
        return None

    @property
    def online(self) -> bool:
        return self._online

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def view(self, evse_id: int) -> ControlView:
        return self._controls[evse_id].snapshot()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the station's task group (cancelled when the station stops)."""
        assert self._tasks is not None
        task = self._tasks.create_task(work, name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    def profiles_changed(self) -> None:
        self._poke.set()

    async def state_durable(self) -> None:
        await self.flusher.flushed()

    def queue_profile_report(self, request_id: int, evse_profiles: list[tuple[int, Any]]) -> None:
        for index, (evse_id, profiles) in enumerate(evse_profiles):
            report = call21.ReportChargingProfiles(
                request_id=request_id,
                charging_limit_source="CSO",
                evse_id=evse_id,
                charging_profile=profiles,
                tbc=index < len(evse_profiles) - 1,
            )
            self.outgoing.send(report)

    def composite_schedule(self, evse_id: int, *, duration_s: int) -> CompositeSchedule:
        """The composite schedule within the local limits (GetCompositeSchedule)."""
        return self.smart.composite(
            evse_id,
            now=self.now(),
            duration_s=duration_s,
            transaction=self.transactions().get(evse_id),
            offline_since=self.offline_since(),
            local=self.local_limits(evse_id),
        )

    def energy_transfer_allowed(self, transaction_id: str, modes: list[str]) -> bool:
        for evse_id, tx in self.transactions().items():
            if tx.transaction_id == transaction_id:
                self._discharge_allowed[evse_id] = allows_discharge(modes)
                # Renegotiation: read the EV's needs again and report them afresh (the old
                # ones stay in force until the new ones are read).
                self._renegotiate.add(evse_id)
                self._poke.set()
                return True
        return False

    def afrr_signal(self, signal: int, timestamp: datetime) -> None:
        """AFRRSignalRequest: schedule ``signal``; raise ProfileRejected when no EVSE follows
        a CentralFrequency period now, or the timestamp is out of range."""
        now = self.now()
        if not any(self._signal_curve_at(evse_id, now) for evse_id in self._controls):
            raise ProfileRejected("NotEnabled", "no CentralFrequency charging profile in force")
        self.afrr.accept(signal, timestamp, now=now)
        self._poke.set()

    def _signal_curve_at(self, evse_id: int, now: datetime) -> bool:
        return self.composite_schedule(evse_id, duration_s=1).at(now).signal_curve is not None

    # --- link callbacks ----------------------------------------------------------------------
    def _set_online(self, online: bool) -> None:
        if online == self._online:
            return
        self._online = online
        if not online:
            self.afrr.drop()  # aFRR does not outlive the link
            self._offline_start_s = self._last_contact_s
            log.warning(
                "station offline; last CSMS contact %.1f s ago",
                self._clock.monotonic() - self._last_contact_s,
            )
        self._poke.set()

    def _current_statuses(self) -> dict[int, str]:
        return {
            evse_id: self.management.status(evse_id, control.snapshot())
            for evse_id, control in self._controls.items()
        }

    # --- control tick ------------------------------------------------------------------------
    async def _control_loop(self) -> None:
        while True:
            self._poke.clear()
            await self.tick()
            try:
                async with asyncio.timeout(self.config.control_tick_s):
                    await self._poke.wait()
            except TimeoutError:
                pass

    async def tick(self) -> None:
        """One control tick for every EVSE (also callable directly by tests)."""
        now = self._clock.now()
        self.smart.purge_expired(now=now)
        if self.offline_since() is not None:
            self.afrr.drop()  # a silent link counts as lost: aFRR does not outlive it
        expired = self.smart.expire_offline(now=now, offline_since=self.offline_since())
        queued = bool(expired)
        busy = set(self.transactions())
        self.management.availability.settle(busy=busy)
        for evse_id, control in self._controls.items():
            queued |= await self._tick_evse(evse_id, control, now)
        self.management.on_tick()
        if queued:
            self.outgoing.nudge()
        self._persist_contact()

    async def _tick_evse(self, evse_id: int, control: ControlPort, now: datetime) -> bool:
        view = self._ev_view(evse_id, control.snapshot())
        # Needs first: the charging power without a profile comes from them. No await
        # follows until the tick is done, so a Started event still precedes them on the wire.
        await self._refresh_needs(evse_id, view, now)
        charge_w, discharge_w = self.ev_limits(evse_id)
        tracker = self._trackers[evse_id]
        period = self.smart.composite(
            evse_id,
            now=now,
            duration_s=1,
            transaction=tracker.transaction,
            offline_since=self.offline_since(),
            local=self.local_limits(evse_id),
        ).at(now)
        target_w = target_power_w(period, charge_w=self._charge_w(evse_id))
        curve = period.freq_curve  # LocalFrequency: target_w is its baseline
        if period.signal_curve is not None:  # CentralFrequency: baseline + the aFRR signal
            response_w = self.afrr.response_w(period.signal_curve, now=now)
            target_w = afrr_target_w(
                target_w,
                response_w,
                limit_w=period.limit_w,
                discharge_limit_w=period.discharge_limit_w,
            )
        stop = not (view.ev_connected and self._may_deliver(evse_id)) or self._ev_held(evse_id)
        if stop:
            target_w, curve = 0.0, None
        charge_w, discharge_w = response_bounds_w(
            period, curve, charge_w=charge_w, discharge_w=discharge_w
        )
        control.set_ev_limits(max_charge_w=charge_w, max_discharge_w=discharge_w)
        control.grant_lease(SetpointLease(target_w, self.config.lease_valid_for_s, curve))
        targets = EvseTargets(target_w, charge_w, discharge_w, view.power_w, stop)
        self._follow_ev(evse_id, control, view, targets)
        tick = TickInputs(view, now, self._clock.monotonic(), self._online, period.mode, target_w)
        reasons = self._advance_transactions(evse_id, tick)
        status = self.management.status(evse_id, view)
        if view.cycles and status != self._statuses.get(evse_id):
            self._statuses[evse_id] = status
            self.outgoing.statuses[evse_id] = status
            return True
        return bool(reasons)

    def _ev_view(self, evse_id: int, view: ControlView) -> ControlView:
        """The EV's own SoC (an ISO 15118 session) over the power stage's, when it has one."""
        session = self._ev_links.get(evse_id)
        soc = session.soc_pct() if isinstance(session, EvSession) else None
        return view if soc is None else dataclasses.replace(cast(Any, view), soc_pct=soc)

    def _follow_ev(
        self, evse_id: int, control: ControlPort, view: ControlView, targets: EvseTargets
    ) -> None:
        """Tell an ISO 15118 session what the EVSE does next (stop on a trip or fail-safe),
        and let it hold the output open outside its charge loop."""
        session = self._ev_links.get(evse_id)
        if not isinstance(session, EvSession):
            return
        tripped = view.trip_code is not None
        stop = targets.stop or view.fail_safe or tripped
        session.follow(dataclasses.replace(targets, stop=stop, emergency=tripped))
        control.hold_for_ev(session.hold() is not None)

    def _ev_held(self, evse_id: int) -> bool:
        """The EV's session holds the energy back (not in its charge loop, EV_COMM_TIMEOUT)."""
        session = self._ev_links.get(evse_id)
        return isinstance(session, EvSession) and session.hold() is not None

    def _may_deliver(self, evse_id: int) -> bool:
        """Energy flows only on an operative EVSE, not after a remote stop (until unplug)."""
        return self.management.operative(evse_id) and not self.management.remote.held(evse_id)

    def _advance_transactions(self, evse_id: int, tick: TickInputs) -> list[str]:
        """Carry out what the CSMS asked for this EVSE, then follow the snapshot."""
        tracker, remote = self._trackers[evse_id], self.management.remote
        running = tracker.transaction
        reasons: list[str] = []
        stop = remote.take_stop(evse_id, ev_connected=tick.view.ev_connected)
        if stop is not None and running is not None:
            reasons.append(tracker.stop(tick, stop.trigger_reason, stop.stopped_reason))
        elif running is not None:
            authorization = remote.take_authorization(evse_id)
            if authorization is not None:
                reasons.append(tracker.report(tick, authorization.start))
            if remote.take_trigger(evse_id):
                reasons.append(tracker.report(tick, StartInfo("Trigger")))
        if not tick.view.ev_connected:
            remote.unplugged(evse_id)
        pending = None
        if tracker.transaction is None and tick.view.ev_connected and self._may_deliver(evse_id):
            pending = remote.take_start(evse_id, now_s=tick.monotonic_s)
        reasons += tracker.tick(
            tick,
            may_start=self._may_deliver(evse_id),
            start=None if pending is None else pending.start,
        )
        if running is not None and tracker.transaction is None:
            self.smart.transaction_ended(running.transaction_id)
            remote.forget(evse_id)
        if pending is not None and pending.charging_profile is not None:
            self._install_remote_profile(evse_id, pending.charging_profile)
        return reasons

    def _install_remote_profile(self, evse_id: int, profile: dict[str, Any]) -> None:
        """A RequestStartTransaction's charging profile, for the transaction it started."""
        try:
            self.smart.install(evse_id, profile, transactions=self.transactions(), now=self.now())
        except ProfileRejected as exc:
            log.warning("charging profile of the remote start refused: %s", exc)

    def local_limits(self, evse_id: int) -> LocalLimits:
        """The EVSE's rating, bounded by what its EV declared (and was allowed)."""
        if evse_id == 0:
            parts = [self.local_limits(e.id) for e in self.config.evses]
            return LocalLimits(sum(p.charge_w for p in parts), sum(p.discharge_w for p in parts))
        rated_w = self.config.evse(evse_id).max_power_w
        needs = self._needs.get(evse_id)
        if needs is None:
            return LocalLimits(rated_w, 0.0)
        _, discharge_w = self.ev_limits(evse_id)
        return LocalLimits(min(rated_w, needs.max_charge_w), min(rated_w, discharge_w))

    def _charge_w(self, evse_id: int) -> float:
        if self.config.default_charge_w is not None:
            return self.config.default_charge_w
        needs = self._needs.get(evse_id)
        return needs.max_charge_w if needs is not None else 0.0

    async def _refresh_needs(self, evse_id: int, view: ControlView, now: datetime) -> None:
        """Read the EV's needs once after plug-in (again after NotifyAllowedEnergyTransfer)
        and queue NotifyEVChargingNeeds; forget them on unplug."""
        if view.cycles == 0:
            return
        if not view.ev_connected:
            if self._needs.pop(evse_id, None) is not None:
                self.outgoing.needs.pop(evse_id, None)
            self._discharge_allowed.pop(evse_id, None)
            self._renegotiate.discard(evse_id)
            return
        if evse_id in self._needs and evse_id not in self._renegotiate:
            return
        needs = await self._read_needs(evse_id)
        if needs is None:
            return
        self._needs[evse_id] = needs
        self._renegotiate.discard(evse_id)
        current_type = self.config.evse(evse_id).current_type
        self.outgoing.needs[evse_id] = charging_needs_request(
            needs,
            evse_id=evse_id,
            now=now,
            current_type=current_type,
            discharge_allowed=self._discharge_allowed.get(evse_id, True),
        )
        self.outgoing.nudge()

    def _may_discharge(self, evse_id: int) -> bool:
        """The EVSE's EV negotiated a bidirectional mode the CSMS allowed (profiles that
        discharge any other session are refused)."""
        _, discharge_w = self.ev_limits(evse_id)
        return discharge_w > 0

    def ev_limits(self, evse_id: int) -> tuple[float, float]:
        """(max charge, max discharge) magnitudes for the control loop: no discharge without
        the EV's declared limits, nor when the CSMS did not allow a bidirectional mode."""
        needs = self._needs.get(evse_id)
        if needs is None:
            return self._charge_w(evse_id), 0.0
        discharge_ok = needs.bidirectional and self._discharge_allowed.get(evse_id, True)
        return needs.max_charge_w, needs.max_discharge_w if discharge_ok else 0.0

    async def _read_needs(self, evse_id: int) -> EvChargingNeeds | None:
        link = self._ev_links.get(evse_id)
        if link is None:
            return None
        try:
            async with asyncio.timeout(_NEEDS_READ_TIMEOUT_S):
                needs = await link.read_charging_needs()
        except Exception as exc:  # any EV-link fault: no V2X until it answers again
            if evse_id not in self._ev_link_failed:
                self._ev_link_failed.add(evse_id)
                log.warning("EV link on EVSE %s failed: %r", evse_id, exc)
            return None
        if evse_id in self._ev_link_failed:
            self._ev_link_failed.discard(evse_id)
            log.info("EV link on EVSE %s answers again", evse_id)
        return needs

    def _persist_contact(self, *, force: bool = False) -> None:
        """Write the last contact time at most every ``_CONTACT_PERSIST_S`` (flash wear); the
        stored time is then older than the truth, so a restart's offline clock runs early."""
        last, stored = self._last_contact, self._persisted_contact
        if last is None or last == stored:
            return
        if force or stored is None or (last - stored).total_seconds() >= _CONTACT_PERSIST_S:
            self.journal.put(_LAST_CONTACT, last.isoformat())
            self._persisted_contact = last


def _per_evse(config: StationConfig, ports: Any) -> dict[int, Any]:
    if isinstance(ports, Mapping):
        missing = {e.id for e in config.evses} - set(ports)
        if missing:
            raise ValueError(f"no port for EVSE(s) {sorted(missing)}")
        return dict(ports)
    if len(config.evses) != 1:
        raise ValueError("several EVSEs need one port per EVSE (a mapping by EVSE id)")
    return {config.evses[0].id: ports}
