"""The live fleet: stations, EVSEs and sessions in memory, authoritative for real time.

Keys: station id; (station id, EVSE id); (station id, transactionId). Every change marks the
key in :class:`PendingWrites` for the write-behind. Handlers call the ``record_*`` methods
with the receive time ``now`` (aware UTC) — nothing here reads a clock.

Ordering rule that makes restarts and offline queues consistent: a meter register, power or
SoC replaces the live value only if its timestamp is not older than the one it replaces;
older readings (queued offline events, replays) still go to the time series. Registers are
cumulative, so the station's next report restores whatever a crash lost.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import EndedSession, SessionState
from vpp_core.fleet.meter import MeterReading, parse_meter_values, parse_timestamp
from vpp_core.fleet.model import (
    EvseLive,
    SessionLive,
    StationEntry,
    StationLive,
    V2xLimits,
)
from vpp_core.fleet.needs import limits_from_needs, soc_from_needs
from vpp_core.fleet.pending import PendingWrites
from vpp_core.fleet.rows import command_row, profile_row, sample_row, security_event_row
from vpp_core.fleet.store import FleetSnapshot

__all__ = ["FleetState"]

#: Connector states in which no vehicle can be plugged in.
_UNPLUGGED_STATES = frozenset({"Available"})
_DEPARTED_TRIGGERS = frozenset({"EVDeparted", "EVCommunicationLost"})
_MAX_REMEMBERED_ENDED = 100_000
#: Last registers of evicted sessions, kept for a dispatch that reads them a control period
#: later (the write-behind evicts an ended session within about a second).
_MAX_REMEMBERED_FINAL = 20_000
_LAST_SEEN_WRITE_S = 60.0


class FleetState:
    """The live fleet. Implements ``vpp_core.dispatch.ports.FleetView``."""

    def __init__(self, *, samples_in_memory: int = 30, max_queued_rows: int = 200_000) -> None:
        self.entries: dict[str, StationEntry] = {}
        self.stations: dict[str, StationLive] = {}
        self.evses: dict[tuple[str, int], EvseLive] = {}
        self.pending_needs: dict[tuple[str, int], V2xLimits] = {}
        self.sessions_by_key: dict[tuple[str, str], SessionLive] = {}
        self._active_by_evse: dict[tuple[str, int], SessionLive] = {}
        #: Ended sessions already written and evicted from memory (bounded): a late or
        #: replayed event for one of them must not reopen it.
        self._ended: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._final: OrderedDict[tuple[str, str], EndedSession] = OrderedDict()
        self.pending = PendingWrites()
        #: Snapshots handed to the dispatcher, rebuilt only for sessions that changed.
        self._snapshots: dict[tuple[str, str], SessionState] = {}
        self._last_seen_written: dict[str, datetime] = {}
        self._samples_in_memory = samples_in_memory
        self._max_queued_rows = max_queued_rows

    # -- restore / registry ---------------------------------------------------------------

    def restore(self, snapshot: FleetSnapshot) -> None:
        """Load what the database held (before any station connects)."""
        self.set_entries(snapshot.entries)
        self.stations = {s.station_id: s for s in snapshot.stations}
        for station in self.stations.values():
            # what was written before a crash says connected: none is until it connects again
            # (a restarted core must not plan on, or think it reached, a station not yet back)
            station.connected = False
        for evse, needs in snapshot.evses:
            key = (evse.station_id, evse.evse_id)
            self.evses[key] = evse
            if needs is not None:
                self.pending_needs[key] = needs
        for ended in snapshot.ended:
            self._remember_ended(ended)
        for session in snapshot.sessions:
            self.sessions_by_key[(session.station_id, session.transaction_id)] = session
            self._active_by_evse[(session.station_id, session.evse_id)] = session

    def adopt_station(self, snapshot: FleetSnapshot) -> None:
        """Take one station's EVSEs and active sessions from the database (what the node that
        held it before wrote) before its first message here: this fleet's copy, if any, is
        older. Nothing is marked for writing (the rows are the database's own)."""
        for evse, needs in snapshot.evses:
            evse_key = (evse.station_id, evse.evse_id)
            self.evses[evse_key] = evse
            if needs is not None:
                self.pending_needs[evse_key] = needs
        for session in snapshot.sessions:
            key = (session.station_id, session.transaction_id)
            if self.pending.sessions and key in self.pending.sessions:
                continue  # changed here since: this fleet's copy is the newer
            self.sessions_by_key[key] = session
            self._active_by_evse[(session.station_id, session.evse_id)] = session
            self._snapshots.pop(key, None)

    def set_entries(self, entries: Iterable[StationEntry]) -> None:
        """Replace the registry view (site, region of each station)."""
        self.entries = {e.station_id: e for e in entries}

    def update_entries(self, changed: Iterable[StationEntry]) -> None:
        """Apply changed registry entries (new or modified)."""
        for entry in changed:
            self.entries[entry.station_id] = entry

    # -- FleetView ------------------------------------------------------------------------

    def sessions(self) -> Sequence[SessionState]:
        """Snapshots of the active sessions (cached until the session changes)."""
        out = []
        cache = self._snapshots
        for s in self._active_by_evse.values():
            entry = self.entries.get(s.station_id)
            station = self.stations.get(s.station_id)
            site, region = (entry.site, entry.region) if entry else ("", "")
            online = bool(station and station.connected)
            connection = station.connections if station else 0
            key = (s.station_id, s.transaction_id)
            snap = cache.get(key)
            if (
                snap is None
                or snap.connected != (online and s.plugged)
                or snap.station_connection != connection
                or snap.site != site
                or snap.region != region
            ):
                snap = cache[key] = s.snapshot(
                    site=site,
                    region=region,
                    station_connected=online,
                    station_connection=connection,
                    ocpp_version=station.subprotocol if station else None,
                )
            out.append(snap)
        return out

    def ended_session(self, key: SessionKey) -> EndedSession | None:
        """The registers of an ended session as its last reading left them (the one in
        ``TransactionEvent(Ended)`` included); None while it is active or once forgotten."""
        session = self.sessions_by_key.get((key.station_id, key.transaction_id))
        if session is None:
            return self._final.get((key.station_id, key.transaction_id))
        return None if session.active else _final_reading(session)

    def active_session_count(self) -> int:
        return len(self._active_by_evse)

    def _session_changed(self, session: SessionLive) -> None:
        key = (session.station_id, session.transaction_id)
        self.pending.sessions.add(key)
        self._snapshots.pop(key, None)

    def session(self, station_id: str, transaction_id: str) -> SessionLive | None:
        return self.sessions_by_key.get((station_id, transaction_id))

    def active_session(self, station_id: str, evse_id: int) -> SessionLive | None:
        return self._active_by_evse.get((station_id, evse_id))

    # -- station ------------------------------------------------------------------------

    def _station(self, station_id: str, now: datetime) -> StationLive:
        """The station's live record, ``last_seen`` bumped. Its row is rewritten for
        ``last_seen`` alone at most every ``_LAST_SEEN_WRITE_S`` (the live view has the
        exact value); methods that change more mark it themselves."""
        station = self.stations.get(station_id)
        if station is None:
            station = self.stations[station_id] = StationLive(station_id)
        written = self._last_seen_written.get(station_id)
        if written is None or (now - written).total_seconds() >= _LAST_SEEN_WRITE_S:
            self._last_seen_written[station_id] = now
            self.pending.stations.add(station_id)
        station.last_seen = now
        return station

    def touch(self, station_id: str, *, now: datetime) -> None:
        """Any message from the station: it is alive."""
        self._station(station_id, now)
        self.pending.touch()

    def station_connected(self, station_id: str, *, subprotocol: str | None, now: datetime) -> None:
        station = self._station(station_id, now)
        self.pending.stations.add(station_id)
        station.connected = True
        station.connections += 1
        station.subprotocol = subprotocol
        self.pending.touch(urgent=True)

    def station_disconnected(self, station_id: str, *, now: datetime) -> None:
        station = self._station(station_id, now)
        self.pending.stations.add(station_id)
        station.connected = False
        self.pending.touch(urgent=True)

    def record_boot(
        self,
        station_id: str,
        *,
        vendor: str | None,
        model: str | None,
        firmware: str | None,
        reason: str,
        now: datetime,
    ) -> None:
        station = self._station(station_id, now)
        self.pending.stations.add(station_id)
        station.vendor, station.model, station.firmware = vendor, model, firmware
        station.boot_reason, station.booted_at = reason, now
        self.pending.touch(urgent=True)

    # -- EVSE -----------------------------------------------------------------------------

    def _evse(self, station_id: str, evse_id: int) -> EvseLive:
        key = (station_id, evse_id)
        evse = self.evses.get(key)
        if evse is None:
            evse = self.evses[key] = EvseLive(station_id, evse_id)
        self.pending.evses.add(key)
        return evse

    def record_status(
        self,
        station_id: str,
        *,
        evse_id: int,
        connector_status: str,
        timestamp: datetime,
        now: datetime,
    ) -> None:
        self._station(station_id, now)
        evse = self._evse(station_id, evse_id)
        evse.connector_status = connector_status
        evse.plugged = connector_status not in _UNPLUGGED_STATES
        evse.updated_at = timestamp
        session = self._active_by_evse.get((station_id, evse_id))
        if session is not None and not evse.plugged:
            session.plugged = False
            self._session_changed(session)
        self.pending.touch(urgent=True)

    def record_charging_limit(
        self,
        station_id: str,
        *,
        evse_id: int,
        source: str,
        grid_critical: bool | None,
        schedules: list[dict[str, Any]] | None,
        now: datetime,
    ) -> None:
        self._station(station_id, now)
        evse = self._evse(station_id, evse_id)
        evse.limit_source, evse.limit_grid_critical = source, grid_critical
        evse.limit_schedule, evse.limit_at = schedules, now
        self.pending.touch(urgent=True)

    def record_charging_needs(
        self,
        station_id: str,
        *,
        evse_id: int,
        needs: Mapping[str, Any],
        timestamp: datetime | None,
        now: datetime,
    ) -> None:
        """V2X limits for the session on that EVSE (kept for the next one if none is active)."""
        self._station(station_id, now)
        limits = limits_from_needs(needs, received_at=timestamp or now)
        session = self._active_by_evse.get((station_id, evse_id))
        if session is None:
            self.pending_needs[(station_id, evse_id)] = limits
            self._evse(station_id, evse_id)
        else:
            session.limits = limits
            soc = soc_from_needs(needs)
            if soc is not None:
                self._apply_soc(session, soc, timestamp or now)
            self._session_changed(session)
        self.pending.touch(urgent=True)

    def record_allowed_energy_transfer(
        self, station_id: str, *, transaction_id: str, modes: Sequence[str], now: datetime
    ) -> bool:
        """The modes a NotifyAllowedEnergyTransfer the station accepted left for the session
        (without a BPT mode it is charge-only); False when the session is unknown."""
        self._station(station_id, now)
        session = self.sessions_by_key.get((station_id, transaction_id))
        if session is None:
            return False
        session.allowed_energy_transfer = tuple(modes)
        self._session_changed(session)
        self.pending.touch(urgent=True)
        return True

    def record_priority_charging(
        self, station_id: str, *, transaction_id: str, activated: bool, now: datetime
    ) -> bool:
        """NotifyPriorityCharging: while activated the session takes part in no dispatch;
        False when the session is unknown."""
        self._station(station_id, now)
        session = self.sessions_by_key.get((station_id, transaction_id))
        if session is None:
            return False
        session.priority_charging = activated
        self._session_changed(session)
        self.pending.touch(urgent=True)
        return True

    # -- transactions ---------------------------------------------------------------------

    def record_transaction_event(
        self,
        station_id: str,
        *,
        event_type: str,
        timestamp: datetime,
        trigger_reason: str,
        seq_no: int,
        transaction_info: Mapping[str, Any],
        evse_id: int | None,
        meter_value: Iterable[Mapping[str, Any]] | None,
        now: datetime,
    ) -> SessionLive:
        readings = parse_meter_values(meter_value)  # raises before anything changes
        self._station(station_id, now)
        tx_id = str(transaction_info["transaction_id"])
        session = self.sessions_by_key.get((station_id, tx_id))
        if session is None and (station_id, tx_id) in self._ended:
            session = self._ended_placeholder(station_id, tx_id, evse_id or 0, timestamp)
        if session is None:
            session = self._open_session(station_id, tx_id, evse_id or 0, timestamp)
        if session.active:
            self._update_session(session, event_type, trigger_reason, transaction_info, timestamp)
        if seq_no is not None and (session.seq_no is None or seq_no > session.seq_no):
            session.seq_no = seq_no
        session.last_seen = now
        self._apply_readings(session, readings)
        if session is self.sessions_by_key.get((station_id, tx_id)):
            self._session_changed(session)
        self.pending.touch(urgent=event_type != "Updated")
        return session

    def _ended_placeholder(
        self, station_id: str, tx_id: str, evse_id: int, at: datetime
    ) -> SessionLive:
        # A late event for a session that ended and was evicted: keep its samples, change
        # nothing live. The placeholder is not tracked; its row is not rewritten.
        return SessionLive(station_id, tx_id, evse_id, at, active=False, plugged=False)

    def evict_ended(self, keys: Iterable[tuple[str, str]]) -> int:
        """Drop ended sessions that were written and not changed since (after a write)."""
        evicted = 0
        for key in keys:
            session = self.sessions_by_key.get(key)
            if session is not None and not session.active and key not in self.pending.sessions:
                del self.sessions_by_key[key]
                self._remember_ended(key)
                self._final[key] = _final_reading(session)
                if len(self._final) > _MAX_REMEMBERED_FINAL:
                    self._final.popitem(last=False)
                evicted += 1
        return evicted

    def _remember_ended(self, key: tuple[str, str]) -> None:
        self._ended[key] = None
        if len(self._ended) > _MAX_REMEMBERED_ENDED:
            self._ended.popitem(last=False)

    def _open_session(
        self, station_id: str, tx_id: str, evse_id: int, started_at: datetime
    ) -> SessionLive:
        # Also reached by an Updated whose Started was lost (e.g. a crash before the write).
        session = SessionLive(
            station_id, tx_id, evse_id, started_at, samples=deque(maxlen=self._samples_in_memory)
        )
        key = (station_id, evse_id)
        previous = self._active_by_evse.get(key)
        if previous is not None:  # the station moved on without telling us the old one ended
            self._close(previous, ended_at=started_at, reason="Superseded")
        needs = self.pending_needs.pop(key, None)
        if needs is not None:
            session.limits = needs
            self._evse(station_id, evse_id)
        self.sessions_by_key[(station_id, tx_id)] = session
        self._active_by_evse[key] = session
        self.pending.touch(urgent=True)
        return session

    def _update_session(
        self,
        session: SessionLive,
        event_type: str,
        trigger_reason: str,
        info: Mapping[str, Any],
        timestamp: datetime,
    ) -> None:
        state = info.get("charging_state")
        if state is not None:
            session.charging_state = state
        if state == "Idle" or trigger_reason in _DEPARTED_TRIGGERS:
            session.plugged = False
        elif state is not None:
            session.plugged = True
        if event_type == "Ended":
            self._close(session, ended_at=timestamp, reason=info.get("stopped_reason"))

    def _close(self, session: SessionLive, *, ended_at: datetime, reason: str | None) -> None:
        session.active = False
        session.plugged = False
        session.ended_at = ended_at
        session.stopped_reason = reason
        session.present_power_w = 0.0
        key = (session.station_id, session.evse_id)
        if self._active_by_evse.get(key) is session:
            del self._active_by_evse[key]
        self._session_changed(session)

    def record_meter_values(
        self,
        station_id: str,
        *,
        evse_id: int,
        meter_value: Iterable[Mapping[str, Any]],
        now: datetime,
    ) -> SessionLive | None:
        """``MeterValues``: applied to the active session on that EVSE, if any."""
        readings = parse_meter_values(meter_value)
        self._station(station_id, now)
        self.pending.touch()
        session = self._active_by_evse.get((station_id, evse_id))
        if session is None:
            return None
        session.last_seen = now
        self._apply_readings(session, readings)
        self._session_changed(session)
        return session

    def _apply_readings(self, session: SessionLive, readings: list[MeterReading]) -> None:
        for r in readings:
            sample = (r.timestamp, r.power_w, r.energy_import_wh, r.energy_export_wh, r.soc_pct)
            session.samples.append(sample)
            self.pending.add_sample(
                sample_row(session.station_id, session.transaction_id, sample),
                max_queued_rows=self._max_queued_rows,
            )
            if session.meter_at is None or r.timestamp >= session.meter_at:
                session.meter_at = r.timestamp
                if r.power_w is not None and session.active:
                    session.present_power_w = r.power_w
                if r.energy_import_wh is not None:
                    session.energy_import_wh = r.energy_import_wh
                if r.energy_export_wh is not None:
                    session.energy_export_wh = r.energy_export_wh
            if r.soc_pct is not None:
                self._apply_soc(session, r.soc_pct, r.timestamp)

    @staticmethod
    def _apply_soc(session: SessionLive, soc_pct: float, at: datetime) -> None:
        if session.soc_at is None or at >= session.soc_at:
            session.soc_pct, session.soc_at = soc_pct, at

    # -- logs -----------------------------------------------------------------------------

    def record_reported_profiles(
        self,
        station_id: str,
        *,
        evse_id: int,
        source: str,
        profiles: Iterable[Mapping[str, Any]],
        now: datetime,
    ) -> None:
        self._station(station_id, now)
        for p in profiles:
            self.pending.profiles.append(
                profile_row(station_id, evse_id, source, dict(p), reported_at=now)
            )
        self.pending.touch()

    def record_security_event(
        self,
        station_id: str,
        *,
        event_type: str,
        timestamp: datetime,
        tech_info: str | None,
        now: datetime,
    ) -> None:
        self._station(station_id, now)
        self.pending.security_events.append(
            security_event_row(
                station_id=station_id,
                event_type=event_type,
                tech_info=tech_info,
                occurred_at=timestamp,
                received_at=now,
            )
        )
        self.pending.touch(urgent=True)

    def record_command(
        self,
        *,
        station_id: str,
        action: str,
        request: Mapping[str, Any],
        sent_at: datetime,
        status: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        latency_s: float | None = None,
    ) -> None:
        """A command sent to a station and its outcome: answered (``status``, ``reason``)
        or failed (``error``); one ``command_log`` row of one shape either way.

        The ``request`` is serialized to JSON at once (the store writes it as it is): the
        log keeps a snapshot, not the caller's objects, and a 10k-station fan-out does not
        keep 10k profile trees alive, for the garbage collector to walk, until written.
        """
        self.pending.commands.append(
            command_row(
                station_id=station_id,
                action=action,
                request=orjson.Fragment(orjson.dumps(request, default=str)),
                sent_at=sent_at,
                status=status,
                reason=reason,
                error=error,
                latency_s=latency_s,
            )
        )
        self.pending.touch(urgent=True)

    @staticmethod
    def timestamp(text: str) -> datetime:
        """An OCPP ``dateTime`` as an aware datetime (raises ``MeterValueError``)."""
        return parse_timestamp(text)


def _final_reading(session: SessionLive) -> EndedSession:
    return EndedSession(
        ended_at=session.ended_at,
        energy_import_wh=session.energy_import_wh,
        energy_export_wh=session.energy_export_wh,
        meter_at=session.meter_at,
    )
