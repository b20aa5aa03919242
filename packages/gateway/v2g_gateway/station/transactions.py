"""Transactions of one EVSE, driven by the control loop's snapshots: plug-in starts one,
unplugging ends it, and in between meter values go out every sampled-data interval and
whenever the charging rate, the operation mode or the charging state changes.

The transaction starts at EV connection (TxStartPoint ``EVConnected``) and stops at
disconnection (TxStopPoint ``EVConnected``); the CSMS may also stop it (RequestStopTransaction,
Reset) while the EV stays plugged in, authorize it (RequestStartTransaction: an ``Updated``
with trigger reason ``RemoteStart`` and the idToken), or ask for an event at once
(TriggerMessage). Events are TransactionEvent request payloads in snake_case, written to the
:class:`~v2g_gateway.station.outbox.TransactionJournal`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.ports import ControlView

__all__ = ["EvseTransactions", "StartInfo", "TickInputs", "meter_value"]


def meter_value(view: ControlView, *, now: datetime, context: str) -> dict[str, Any]:
    """One ``MeterValueType`` with the measurands the VPP uses (power signed: negative while
    discharging; Power.Active.Export is the discharge magnitude)."""
    samples: list[dict[str, Any]] = [
        _sample(view.energy_import_wh, "Energy.Active.Import.Register", "Wh", context),
        _sample(view.energy_export_wh, "Energy.Active.Export.Register", "Wh", context),
        _sample(view.power_w, "Power.Active.Import", "W", context),
        _sample(max(0.0, -view.power_w), "Power.Active.Export", "W", context),
    ]
    if view.soc_pct is not None:
        samples.append(_sample(view.soc_pct, "SoC", "Percent", context))
    return {"timestamp": now.isoformat(), "sampled_value": samples}


def _sample(value: float, measurand: str, unit: str, context: str) -> dict[str, Any]:
    return {
        "value": round(float(value), 3),
        "measurand": measurand,
        "context": context,
        "unit_of_measure": {"unit": unit},
    }


@dataclass(frozen=True, slots=True)
class TickInputs:
    """What one control tick knows about an EVSE."""

    view: ControlView
    now: datetime
    monotonic_s: float
    online: bool
    mode: str
    target_w: float


@dataclass(frozen=True, slots=True)
class StartInfo:
    """Who starts or authorizes a transaction: a plug-in by itself, or a remote start."""

    trigger_reason: str = "CablePluggedIn"
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None


class EvseTransactions:
    """The transaction state machine of one EVSE (restored from the journal after a restart)."""

    def __init__(
        self,
        journal: TransactionJournal,
        *,
        evse_id: int,
        connector_id: int,
        sampled_interval_s: float,
        rate_change_threshold_w: float,
    ) -> None:
        self._journal = journal
        self.evse_id = evse_id
        self._connector_id = connector_id
        #: TxUpdatedInterval: the device model may change it while running.
        self.sampled_interval_s = sampled_interval_s
        self._threshold_w = rate_change_threshold_w
        record = journal.running().get(evse_id)
        self.transaction: ActiveTransaction | None = (
            None if record is None else ActiveTransaction(record.transaction_id, record.started_at)
        )
        self._last_sample_s: float | None = None
        self._last_mode: str | None = None
        self._last_target_w: float | None = None
        self._last_state: str | None = None

    def tick(
        self, tick: TickInputs, *, may_start: bool = True, start: StartInfo | None = None
    ) -> list[str]:
        """Advance on one snapshot; returns the trigger reasons of the events it queued.

        ``may_start`` False keeps a plugged-in EV without a transaction (EVSE inoperative,
        stopped remotely); ``start`` says who started it when one starts."""
        if tick.view.cycles == 0:
            return []  # the control loop has not measured anything yet
        if self.transaction is None and tick.view.ev_connected and may_start:
            return [self._start(tick, start or StartInfo())]
        if self.transaction is not None and not tick.view.ev_connected:
            return [self.stop(tick, "EVCommunicationLost", "EVDisconnected")]
        if self.transaction is not None:
            reason = self._update_reason(tick)
            if reason is not None:
                self._update(tick, reason)
                return [reason]
        return []

    def _start(self, tick: TickInputs, start: StartInfo) -> str:
        transaction_id = str(uuid.uuid4())
        self._journal.begin(self.evse_id, transaction_id, tick.now)
        self.transaction = ActiveTransaction(transaction_id, tick.now)
        payload = self._payload(tick, "Started", start.trigger_reason, "Transaction.Begin")
        payload["evse"] = {"id": self.evse_id, "connector_id": self._connector_id}
        _authorized_by(payload, start)
        self._journal.enqueue(self.evse_id, payload)
        self._remember(tick)
        return start.trigger_reason

    def stop(self, tick: TickInputs, trigger_reason: str, stopped_reason: str) -> str:
        """End the running transaction now (``Ended`` with these reasons)."""
        payload = self._payload(tick, "Ended", trigger_reason, "Transaction.End")
        info = payload["transaction_info"]
        info["stopped_reason"] = stopped_reason
        info["charging_state"] = "EVConnected" if tick.view.ev_connected else "Idle"
        self._journal.enqueue(self.evse_id, payload, ends=True)
        self.transaction = None
        self._last_sample_s = self._last_mode = self._last_target_w = self._last_state = None
        return trigger_reason

    def report(self, tick: TickInputs, start: StartInfo) -> str:
        """An ``Updated`` event now: ``Trigger`` (TriggerMessage) or ``RemoteStart`` with the
        idToken that authorizes the running transaction."""
        payload = self._payload(tick, "Updated", start.trigger_reason, "Trigger")
        _authorized_by(payload, start)
        self._journal.enqueue(self.evse_id, payload)
        self._remember(tick)
        return start.trigger_reason

    def _update_reason(self, tick: TickInputs) -> str | None:
        if self._last_sample_s is None:
            # First tick after a restart: resume sampling without an extra event.
            self._remember(tick)
            return None
        if tick.mode != self._last_mode:
            return "OperationModeChanged"
        if abs(tick.target_w - (self._last_target_w or 0.0)) > self._threshold_w:
            return "ChargingRateChanged"
        if _charging_state(tick) != self._last_state:
            return "ChargingStateChanged"
        if tick.monotonic_s - self._last_sample_s >= self.sampled_interval_s:
            return "MeterValuePeriodic"
        return None

    def _update(self, tick: TickInputs, reason: str) -> None:
        context = "Sample.Periodic" if reason == "MeterValuePeriodic" else "Trigger"
        self._journal.enqueue(self.evse_id, self._payload(tick, "Updated", reason, context))
        self._remember(tick)

    def _remember(self, tick: TickInputs) -> None:
        self._last_sample_s = tick.monotonic_s
        self._last_mode = tick.mode
        self._last_target_w = tick.target_w
        self._last_state = _charging_state(tick)

    def _payload(
        self, tick: TickInputs, event_type: str, reason: str, context: str
    ) -> dict[str, Any]:
        assert self.transaction is not None
        payload: dict[str, Any] = {
            "event_type": event_type,
            "timestamp": tick.now.isoformat(),
            "trigger_reason": reason,
            "transaction_info": {
                "transaction_id": self.transaction.transaction_id,
                "charging_state": _charging_state(tick),
                "operation_mode": tick.mode,
            },
            "meter_value": [meter_value(tick.view, now=tick.now, context=context)],
        }
        if not tick.online:
            payload["offline"] = True
        return payload


def _authorized_by(payload: dict[str, Any], start: StartInfo) -> None:
    if start.id_token is not None:
        payload["id_token"] = dict(start.id_token)
    if start.remote_start_id is not None:
        payload["transaction_info"]["remote_start_id"] = start.remote_start_id


def _charging_state(tick: TickInputs) -> str:
    if not tick.view.contactor_closed or tick.view.fail_safe or abs(tick.target_w) < 1.0:
        return "SuspendedEVSE"
    return "Charging"
