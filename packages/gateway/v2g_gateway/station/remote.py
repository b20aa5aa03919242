"""What the CSMS asked of each EVSE's transactions and the next control tick carries out:
remote starts (F01/F02) waiting for the EV or authorizing a running transaction, stops
(RequestStopTransaction F03, Reset B11/B12), and TransactionEvents asked for by TriggerMessage.

The station's transactions start when the EV is plugged in; a remote start on an EVSE with a
running transaction authorizes it, one on an idle EVSE waits ``EVConnectionTimeOut`` for the
EV. After a stop the EV stays plugged in: no new transaction starts until it is unplugged.
Pure: time is an argument (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from v2g_gateway.station.transactions import StartInfo

__all__ = ["PendingStart", "RemoteControl", "StopRequest"]


@dataclass(frozen=True, slots=True)
class PendingStart:
    """A RequestStartTransaction accepted for an EVSE."""

    start: StartInfo
    charging_profile: dict[str, Any] | None
    expires_s: float


@dataclass(frozen=True, slots=True)
class StopRequest:
    trigger_reason: str  # RemoteStop, ResetCommand
    stopped_reason: str  # Remote, ImmediateReset
    #: Keep a plugged-in EV without energy until it is unplugged (a remote stop; after a
    #: reset the station starts afresh, as after any reboot).
    hold: bool = True


class RemoteControl:
    """Per-EVSE requests from the CSMS, consumed by the control tick."""

    def __init__(self) -> None:
        self._starts: dict[int, PendingStart] = {}
        self._authorizations: dict[int, PendingStart] = {}
        self._stops: dict[int, StopRequest] = {}
        self._triggered: set[int] = set()
        self._held: set[int] = set()

    # -- requests (handlers) --------------------------------------------------------------
    def start_when_plugged(self, evse_id: int, pending: PendingStart) -> None:
        self._starts[evse_id] = pending

    def authorize_running(self, evse_id: int, pending: PendingStart) -> None:
        self._authorizations[evse_id] = pending

    def stop(self, evse_id: int, request: StopRequest) -> None:
        self._stops[evse_id] = request

    def trigger_event(self, evse_id: int) -> None:
        self._triggered.add(evse_id)

    def has_pending_start(self, evse_id: int, *, now_s: float) -> bool:
        pending = self._starts.get(evse_id)
        return pending is not None and now_s < pending.expires_s

    # -- the tick ---------------------------------------------------------------------------
    def held(self, evse_id: int) -> bool:
        """Stopped while plugged in: no energy and no new transaction until unplugged."""
        return evse_id in self._held

    def unplugged(self, evse_id: int) -> None:
        self._held.discard(evse_id)

    def take_stop(self, evse_id: int, *, ev_connected: bool) -> StopRequest | None:
        request = self._stops.pop(evse_id, None)
        if request is not None and ev_connected and request.hold:
            self._held.add(evse_id)
        return request

    def take_trigger(self, evse_id: int) -> bool:
        if evse_id in self._triggered:
            self._triggered.discard(evse_id)
            return True
        return False

    def take_authorization(self, evse_id: int) -> PendingStart | None:
        return self._authorizations.pop(evse_id, None)

    def take_start(self, evse_id: int, *, now_s: float) -> PendingStart | None:
        """The remote start a transaction starting now belongs to (expired ones dropped)."""
        pending = self._starts.pop(evse_id, None)
        if pending is None or now_s >= pending.expires_s:
            return None
        return pending

    def forget(self, evse_id: int) -> None:
        """A transaction ended: requests for it no longer apply."""
        self._authorizations.pop(evse_id, None)
        self._stops.pop(evse_id, None)
        self._triggered.discard(evse_id)
