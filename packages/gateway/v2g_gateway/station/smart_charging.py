"""Smart charging on the station: accepting, storing, clearing and reporting charging
profiles, the composite schedule per EVSE, and the offline rules of OCPP 2.1 profiles.

No I/O besides the SQLite store; ``now`` is always an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.station.composite import (
    ActiveTransaction,
    CompositeSchedule,
    EvseElectrics,
    LocalLimits,
    compose,
)
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.frequency_profiles import curve_to_wire
from v2g_gateway.station.profiles import (
    ChargingProfile,
    check_discharge,
    check_profile,
    parse_profile,
)
from v2g_gateway.station.signal_profiles import signal_curve_to_wire
from v2g_gateway.station.store import ProfileStore, StoredProfile

__all__ = ["SmartCharging", "composite_to_wire"]

log = logging.getLogger(__name__)


class SmartCharging:
    """The station's charging profiles and what they add up to."""

    def __init__(
        self,
        config: StationConfig,
        store: ProfileStore,
        *,
        may_discharge: Callable[[int], bool],
    ) -> None:
        """``may_discharge(evse_id)``: whether the EVSE's session negotiated a bidirectional
        mode the CSMS allowed; a TxProfile that would discharge any other is refused."""
        self._config = config
        self._store = store
        self._may_discharge = may_discharge
        self.evse_ids = frozenset(e.id for e in config.evses)

    def electrics(self, evse_id: int) -> EvseElectrics:
        evse = self._config.evse(evse_id) if evse_id else self._config.evses[0]
        return EvseElectrics(evse_id, evse.nominal_voltage_v, evse.phases)

    def install(
        self,
        evse_id: int,
        wire: Mapping[str, Any],
        *,
        transactions: Mapping[int, ActiveTransaction],
        now: datetime,
    ) -> None:
        """Validate and store a profile from SetChargingProfile; raise ProfileRejected."""
        profile = parse_profile(wire, evse_id=evse_id, received_at=now)
        running = {evse: tx.transaction_id for evse, tx in transactions.items()}
        check_profile(profile, evse_ids=self.evse_ids, transactions=running, now=now)
        check_discharge(profile, bidirectional=self._may_discharge(evse_id))
        if profile.purpose == "TxProfile" and profile.transaction_id is None:
            # Bind it to the running transaction so it ends with it.
            profile = _with_transaction(profile, running[evse_id])
        self._store.install(profile, wire)
        log.info(
            "installed charging profile %s (%s, stackLevel %s) on EVSE %s",
            profile.id,
            profile.purpose,
            profile.stack_level,
            evse_id,
        )

    def update_dynamic(
        self,
        profile_id: int,
        update: Mapping[str, Any],
        *,
        transactions: Mapping[int, ActiveTransaction] | None,
        now: datetime,
    ) -> None:
        """Apply UpdateDynamicSchedule values to a Dynamic profile; raise ProfileRejected.
        ``transactions`` None skips re-validation (nothing but the timestamp changes)."""
        stored, wire = self._store.updated_dynamic_wire(profile_id, update)
        profile = parse_profile(wire, evse_id=stored.profile.evse_id, received_at=now)
        if transactions is not None:
            running = {evse: tx.transaction_id for evse, tx in transactions.items()}
            check_profile(profile, evse_ids=self.evse_ids, transactions=running, now=now)
            evse_id = stored.profile.evse_id
            check_discharge(profile, bidirectional=self._may_discharge(evse_id))
        if stored.profile.transaction_id is not None:
            profile = _with_transaction(profile, stored.profile.transaction_id)
        self._store.install(profile, wire)

    def dynamic_updates_due(self, *, now: datetime) -> list[int]:
        """Dynamic profiles whose ``dynUpdateInterval`` ran out since their last update."""
        due = []
        for p in self._store.profiles():
            if p.kind != "Dynamic" or not p.dyn_update_interval_s or p.received_at is None:
                continue
            if now >= p.received_at + timedelta(seconds=p.dyn_update_interval_s):
                due.append(p.id)
        return due

    def touch_dynamic(self, profile_id: int, *, now: datetime) -> None:
        """Restart a Dynamic profile's update interval without new values."""
        self.update_dynamic(profile_id, {}, transactions=None, now=now)

    def clear(
        self,
        *,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> bool:
        removed = self._store.clear(
            profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level
        )
        log.info("cleared %d charging profile(s)", removed)
        return removed > 0

    def transaction_ended(self, transaction_id: str) -> None:
        self._store.remove_transaction(transaction_id)

    def matching(
        self,
        *,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
        profile_ids: list[int] | None,
    ) -> list[StoredProfile]:
        """Installed profiles matching GetChargingProfiles criteria."""
        found = []
        for stored in self._store.all():
            p = stored.profile
            if evse_id is not None and p.evse_id != evse_id:
                continue
            if purpose is not None and p.purpose != purpose:
                continue
            if stack_level is not None and p.stack_level != stack_level:
                continue
            if profile_ids and p.id not in profile_ids:
                continue
            found.append(stored)
        return found

    def composite(
        self,
        evse_id: int,
        *,
        now: datetime,
        duration_s: int,
        transaction: ActiveTransaction | None,
        offline_since: datetime | None,
        local: LocalLimits | None = None,
    ) -> CompositeSchedule:
        return compose(
            self._store.profiles(),
            evse=self.electrics(evse_id),
            start=now,
            duration_s=duration_s,
            transaction=transaction,
            offline_since=offline_since,
            local=local,
        )

    def purge_expired(self, *, now: datetime) -> list[int]:
        """Forget profiles past their ``validTo``; returns their ids."""
        gone = [
            p.id for p in self._store.profiles() if p.valid_to is not None and p.valid_to <= now
        ]
        for profile_id in gone:
            self._store.clear(profile_id=profile_id)
        return gone

    def expire_offline(self, *, now: datetime, offline_since: datetime | None) -> list[int]:
        """Remove for good the profiles with ``invalidAfterOfflineDuration`` whose
        ``maxOfflineDuration`` ran out during this outage; returns their ids."""
        if offline_since is None:
            return []
        expired = []
        for p in self._store.profiles():
            if not p.invalid_after_offline_duration or p.max_offline_duration_s is None:
                continue
            if now >= offline_since + timedelta(seconds=p.max_offline_duration_s):
                self._store.clear(profile_id=p.id)
                expired.append(p.id)
                log.warning(
                    "charging profile %s invalid after %s s offline", p.id, p.max_offline_duration_s
                )
        return expired


def _with_transaction(profile: ChargingProfile, transaction_id: str) -> ChargingProfile:
    return replace(profile, transaction_id=transaction_id)


def composite_to_wire(
    schedule: CompositeSchedule,
    *,
    unit: str,
    electrics: EvseElectrics,
    legacy: bool = False,
) -> dict[str, Any]:
    """A snake_case ``CompositeScheduleType`` dict in ``unit`` (W or A).

    The schedule must be bounded by local limits (every period then has its ``limit``).
    ``legacy`` (OCPP 2.0.1) has only ``limit``, which it requires: a setpoint goes out as
    that (negative = discharge, the old convention)."""
    scale = 1.0 if unit == "W" else 1.0 / (electrics.voltage_v * electrics.phases)
    periods = []
    for period in schedule.periods:
        if period.limit_w is None:
            raise ValueError(f"composite period at {period.start} has no limit")
        item: dict[str, Any] = {
            "start_period": int((period.start - schedule.start).total_seconds())
        }
        if legacy:
            limit = period.setpoint_w if period.setpoint_w is not None else period.limit_w
            item["limit"] = round(limit * scale, 3)
            periods.append(item)
            continue
        item["operation_mode"] = period.mode
        for key, value in (
            ("limit", period.limit_w),
            ("discharge_limit", period.discharge_limit_w),
            ("setpoint", period.setpoint_w),
        ):
            if value is not None:
                item[key] = round(value * scale, 3)
        if period.freq_curve is not None and period.setpoint_w is not None:
            del item["setpoint"]  # LocalFrequency: the setpoint is the curve's baseline
            item.update(curve_to_wire(period.setpoint_w, period.freq_curve, scale=scale))
        if period.signal_curve is not None and period.setpoint_w is not None:
            del item["setpoint"]  # CentralFrequency: the setpoint is the curve's baseline
            item.update(signal_curve_to_wire(period.setpoint_w, period.signal_curve, scale=scale))
        periods.append(item)
    return {
        "evse_id": schedule.evse_id,
        "duration": schedule.duration_s,
        "schedule_start": schedule.start.isoformat(),
        "charging_rate_unit": unit,
        "charging_schedule_period": periods,
    }
