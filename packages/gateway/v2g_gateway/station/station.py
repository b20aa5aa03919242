"""The OCPP 2.1 charging station as one supervisor component::

    async with ChargingStation(config.station, control=channel, ev_link=ev, clock=SystemClock()):
        await stop.wait()

It owns a TaskGroup with two tasks: ``station-link`` (connection, boot, heartbeat, sender; see
:mod:`~v2g_gateway.station.link`) and ``station-control`` (every ``control_tick_s``: composite
schedule -> setpoint lease, transactions and meter values from the control snapshot, the EV's
charging needs). The lease is short and renewed each tick, so a station that stops ticking
stops the discharge; contact is reported to the control loop only on real CSMS exchanges, so
its comms-loss fail-safe sees a dead link.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.station.composite import ActiveTransaction, target_power_w
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.link import CsmsLink, Outgoing
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
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import ProfileStore, open_state_db
from v2g_gateway.station.transactions import EvseTransactions, TickInputs

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
    ) -> None:
        self.config = config
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
        self._tasks: asyncio.TaskGroup | None = None

    # --- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> ChargingStation:
        self._db = open_state_db(self.config.state_dir)
        self.journal = TransactionJournal(self._db)
        self.smart = SmartCharging(self.config, ProfileStore(self._db))
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
        self.outgoing = Outgoing(self.journal)
        self.link = CsmsLink(
            self.config,
            services=self,
            outgoing=self.outgoing,
            on_online=self._set_online,
            current_statuses=self._current_statuses,
            rng=self._rng,
        )
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._link_task = self._tasks.create_task(self.link.run(), name="station-link")
        self._control_task = self._tasks.create_task(self._control_loop(), name="station-control")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._tasks is not None
        self._link_task.cancel()
        self._control_task.cancel()
        try:
            # The body's own exception propagates as it is; a task's crash comes as a group.
            await self._tasks.__aexit__(None, None, None)
        finally:
            for control in self._controls.values():
                control.grant_lease(SetpointLease(0.0, self.config.lease_valid_for_s))
            self._persist_contact(force=True)
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

    def profiles_changed(self) -> None:
        self._poke.set()

    def queue_profile_report(self, request_id: int, evse_profiles: list[tuple[int, Any]]) -> None:
        for index, (evse_id, profiles) in enumerate(evse_profiles):
            self.outgoing.reports.append(
                {
                    "request_id": request_id,
                    "charging_limit_source": "CSO",
                    "evse_id": evse_id,
                    "charging_profile": profiles,
                    "tbc": index < len(evse_profiles) - 1,
                }
            )
        self.outgoing.nudge()

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

    # --- link callbacks ----------------------------------------------------------------------
    def _set_online(self, online: bool) -> None:
        if online == self._online:
            return
        self._online = online
        if not online:
            self._offline_start_s = self._last_contact_s
            log.warning(
                "station offline; last CSMS contact %.1f s ago",
                self._clock.monotonic() - self._last_contact_s,
            )
        self._poke.set()

    def _current_statuses(self) -> dict[int, str]:
        return {
            evse_id: _connector_status(control.snapshot())
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
        expired = self.smart.expire_offline(now=now, offline_since=self.offline_since())
        queued = bool(expired)
        for evse_id, control in self._controls.items():
            queued |= await self._tick_evse(evse_id, control, now)
        if queued:
            self.outgoing.nudge()
        self._persist_contact()

    async def _tick_evse(self, evse_id: int, control: ControlPort, now: datetime) -> bool:
        view = control.snapshot()
        # Needs first: the charging power without a profile comes from them. No await
        # follows until the tick is done, so a Started event still precedes them on the wire.
        await self._refresh_needs(evse_id, view, now)
        charge_w, discharge_w = self.ev_limits(evse_id)
        control.set_ev_limits(max_charge_w=charge_w, max_discharge_w=discharge_w)
        tracker = self._trackers[evse_id]
        period = self.smart.composite(
            evse_id,
            now=now,
            duration_s=1,
            transaction=tracker.transaction,
            offline_since=self.offline_since(),
        ).at(now)
        target_w = target_power_w(period, charge_w=self._charge_w(evse_id))
        if not view.ev_connected:
            target_w = 0.0
        control.grant_lease(SetpointLease(target_w, self.config.lease_valid_for_s))
        ended = tracker.transaction
        reasons = tracker.tick(
            TickInputs(view, now, self._clock.monotonic(), self._online, period.mode, target_w)
        )
        if "EVCommunicationLost" in reasons and ended is not None:
            self.smart.transaction_ended(ended.transaction_id)
        status = _connector_status(view)
        if view.cycles and status != self._statuses.get(evse_id):
            self._statuses[evse_id] = status
            self.outgoing.statuses[evse_id] = status
            return True
        return bool(reasons)

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
            needs, evse_id=evse_id, now=now, current_type=current_type
        )
        self.outgoing.nudge()

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


def _connector_status(view: ControlView) -> str:
    """Faulted on a hardware trip (the comms-loss fail-safe is not a fault of the EVSE)."""
    if view.trip_code is not None:
        return "Faulted"
    return "Occupied" if view.ev_connected else "Available"


def _per_evse(config: StationConfig, ports: Any) -> dict[int, Any]:
    if isinstance(ports, Mapping):
        missing = {e.id for e in config.evses} - set(ports)
        if missing:
            raise ValueError(f"no port for EVSE(s) {sorted(missing)}")
        return dict(ports)
    if len(config.evses) != 1:
        raise ValueError("several EVSEs need one port per EVSE (a mapping by EVSE id)")
    return {config.evses[0].id: ports}
