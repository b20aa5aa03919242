"""A scripted in-process fleet for dispatch tests: FleetView + StationCommands over simulated EVs.

Each EVSE drives a ``v2g_sim.module.PowerModuleModel`` (lag, ramp, dead-band, SoC, energy
registers). Stations keep the profiles they are sent, apply the highest-stackLevel valid
TxProfile's setpoint (or legacy signed limit), drop it when it expires or is cleared, and can be
scripted to reject, fail, go offline or lose their EV. Every command is logged verbatim.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from v2g_sim.ev import EvSpec, charging_needs
from v2g_sim.module import ModuleSpec, PowerModuleModel
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import CommandResult, EndedSession, SessionState

T0 = datetime.fromisoformat("2026-01-15T12:00:00+00:00")


class VirtualClock:
    """Simulated time. ``auto``: a sleep jumps time forward (stepping ``on_advance``);
    manual: sleepers wait until the test calls :meth:`advance`."""

    def __init__(self, start: datetime = T0, *, auto: bool = True) -> None:
        self._now = start
        self.auto = auto
        self.on_advance: list[Callable[[float], None]] = []
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    def _move_to(self, when: datetime) -> None:
        dt_s = (when - self._now).total_seconds()
        if dt_s > 0:
            self._now = when
            for hook in self.on_advance:
                hook(dt_s)

    async def advance(self, seconds: float) -> None:
        self._move_to(self._now + timedelta(seconds=seconds))
        async with self._moved:
            self._moved.notify_all()
        for _ in range(5):
            await asyncio.sleep(0)

    async def sleep_until(self, when: datetime) -> None:
        if self.auto:
            self._move_to(when)
            await asyncio.sleep(0)
            return
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)


async def until(condition: Callable[[], object], *, timeout_s: float = 5.0) -> None:
    """Wait (real time, bounded) until ``condition()`` holds."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.001)


@dataclass(eq=False)
class Vehicle:
    key: SessionKey
    ev: EvSpec
    module: PowerModuleModel
    site: str
    region: str
    plugged_at: datetime
    plugged: bool = True
    needs: Any = None
    baseline_w: float = 0.0  # what the EV does without a VPP profile (e.g. charging)
    ended: EndedSession | None = None  # the Ended event's registers, once unplugged


@dataclass(eq=False)
class Station:
    station_id: str
    online: bool = True
    connection: int = 1  # bumped by a reconnect (SessionState.station_connection)
    profiles: list[dict[str, Any]] = field(default_factory=list)  # each with "evse_id"
    reject: str | None = None  # reason to reject SetChargingProfile with
    fail: BaseException | None = None  # raised by every command
    set_calls: int = 0


@dataclass(eq=False)
class HeldCommand:
    """A fleet command that waits inside the call until :meth:`release`: ``entered`` is set
    once a caller is waiting in it (so a test waits on that, not on scheduler yields)."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


class ScriptedFleet:
    """FleetView and StationCommands for a set of simulated stations with one EV per EVSE."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        module: ModuleSpec | None = None,
        meter_interval_s: float | None = None,
    ) -> None:
        """``meter_interval_s``: report power and energy registers as sampled every so often
        (stamped ``meter_at``), as stations do, instead of exact values at every read."""
        self.clock = clock
        self.meter_interval_s = meter_interval_s
        self._meters: dict[SessionKey, tuple[float, float, float, datetime]] = {}
        self._metered_at: datetime | None = None
        self.module_spec = module or ModuleSpec(
            lag_tau_s=2.0, ramp_w_per_s=3_000.0, deadband_w=50.0
        )
        self.stations: dict[str, Station] = {}
        self.vehicles: dict[SessionKey, Vehicle] = {}
        self.log: list[tuple[str, str, dict[str, Any]]] = []  # (command, station, args)
        self._events: list[tuple[datetime, Callable[[], None]]] = []
        clock.on_advance.append(self.step)

    # --- scripting --------------------------------------------------------------------------
    def add(
        self,
        station_id: str,
        ev: EvSpec,
        *,
        evse_id: int = 1,
        site: str = "site-a",
        region: str = "north",
        tau_s: float | None = None,
    ) -> SessionKey:
        self.stations.setdefault(station_id, Station(station_id))
        key = SessionKey(station_id, evse_id, f"tx-{station_id}-{evse_id}")
        spec = (
            self.module_spec
            if tau_s is None
            else ModuleSpec(
                lag_tau_s=tau_s,
                ramp_w_per_s=self.module_spec.ramp_w_per_s,
                deadband_w=self.module_spec.deadband_w,
            )
        )
        module = PowerModuleModel(spec=spec, seed=len(self.vehicles))
        module.plug_in(ev)
        v = Vehicle(key, ev, module, site, region, self.clock.now())
        v.needs = charging_needs(ev, soc_pct=ev.soc_pct, plugged_at=v.plugged_at)
        self.vehicles[key] = v
        return key

    def unplug(self, key: SessionKey, *, ended_reading: bool = True) -> None:
        """The EV leaves: TransactionEvent(Ended), carrying the final registers unless
        ``ended_reading`` is False (a station that sends none)."""
        v = self.vehicles[key]
        v.plugged = False
        v.module.plug_out()
        if ended_reading:
            m, now = v.module, self.clock.now()
            v.ended = EndedSession(now, m.energy_absorbed_wh, m.energy_injected_wh, now)
        st = self.stations[key.station_id]
        st.profiles = [p for p in st.profiles if p.get("transaction_id") != key.transaction_id]

    def profiles_at(self, station_id: str, *, stack_level: int) -> list[dict[str, Any]]:
        return [p for p in self.stations[station_id].profiles if p["stack_level"] == stack_level]

    def applied_setpoint_w(self, key: SessionKey) -> float:
        """What the station would apply to this EVSE now (its composite, simplified)."""
        return self._setpoint(self.vehicles[key], self.clock.now())

    def hold(self, method: str) -> HeldCommand:
        """Make ``method`` (e.g. ``"clear_charging_profile"``) wait for the returned
        :class:`HeldCommand` to be released before it answers."""
        held = HeldCommand()
        answer = getattr(self, method)

        async def held_call(*args: Any, **kw: Any) -> Any:
            held.entered.set()
            await held.released.wait()
            return await answer(*args, **kw)

        setattr(self, method, held_call)
        return held

    def calls(self, command: str) -> list[tuple[str, dict[str, Any]]]:
        return [(s, a) for c, s, a in self.log if c == command]

    # --- physics ----------------------------------------------------------------------------
    def at(self, when: datetime, action: Callable[[], None]) -> None:
        """Run ``action`` when simulated time reaches ``when`` (e.g. an unplug mid-window)."""
        self._events.append((when, action))
        self._events.sort(key=lambda e: e[0])

    def step(self, dt_s: float) -> None:
        """Advance the physics to the clock's now, firing scripted events on the way."""
        end = self.clock.now()
        t = end - timedelta(seconds=dt_s)
        while self._events and self._events[0][0] <= end:
            when, action = self._events.pop(0)
            self._physics(t, max(t, when))
            t = max(t, when)
            action()
        self._physics(t, end)
        self._sample_meters(end)

    def _sample_meters(self, now: datetime) -> None:
        interval = self.meter_interval_s
        if interval is None:
            return
        if self._metered_at is not None and (now - self._metered_at).total_seconds() < interval:
            return
        self._metered_at = now
        for key, v in self.vehicles.items():
            m = v.module
            self._meters[key] = (m.power_w, m.energy_absorbed_wh, m.energy_injected_wh, now)

    def _physics(self, t0: datetime, t1: datetime) -> None:
        dt_s = (t1 - t0).total_seconds()
        if dt_s <= 0:
            return
        for v in self.vehicles.values():
            if v.plugged:
                v.module.command_setpoint(self._setpoint(v, t0))
                v.module.step(dt_s)

    def _setpoint(self, v: Vehicle, now: datetime) -> float:
        st = self.stations[v.key.station_id]
        best: dict[str, Any] | None = None
        for p in st.profiles:
            if p["evse_id"] != v.key.evse_id or p.get("transaction_id") not in (
                None,
                v.key.transaction_id,
            ):
                continue
            valid_to = p.get("valid_to")
            if valid_to and datetime.fromisoformat(valid_to.replace("Z", "+00:00")) <= now:
                continue
            if not st.online and p.get("max_offline_duration") is not None:
                continue  # (simplified: offline stations drop VPP profiles at once)
            if best is None or p["stack_level"] > best["stack_level"]:
                best = p
        if best is None:
            return v.baseline_w
        period = best["charging_schedule"][0]["charging_schedule_period"][0]
        return float(period.get("setpoint", period.get("limit", 0.0)))

    # --- FleetView --------------------------------------------------------------------------
    def sessions(self) -> list[SessionState]:
        now = self.clock.now()
        return [self._state(v, now) for v in self.vehicles.values() if v.plugged]

    def ended_session(self, key: SessionKey) -> EndedSession | None:
        v = self.vehicles.get(key)
        return v.ended if v is not None and not v.plugged else None

    def _state(self, v: Vehicle, now: datetime) -> SessionState:
        n, m = v.needs, v.module
        power_w, import_wh, export_wh, meter_at = self._meters.get(
            v.key, (m.power_w, m.energy_absorbed_wh, m.energy_injected_wh, now)
        )
        return SessionState(
            station_id=v.key.station_id,
            evse_id=v.key.evse_id,
            transaction_id=v.key.transaction_id,
            site=v.site,
            region=v.region,
            started_at=v.plugged_at,
            connected=self.stations[v.key.station_id].online and v.plugged,
            soc_pct=m.soc_pct,
            soc_at=now,
            max_discharge_w=n.max_discharge_w,
            min_discharge_w=n.min_discharge_w,
            max_charge_w=n.max_charge_w,
            min_charge_w=n.min_charge_w,
            target_soc_pct=n.target_soc_pct,
            departure=n.departure,
            ev_min_v2x_energy_wh=n.ev_min_v2x_energy_wh,
            ev_target_energy_wh=n.ev_target_energy_wh,
            battery_capacity_wh=n.battery_capacity_wh,
            present_power_w=power_w,
            energy_import_wh=import_wh,
            energy_export_wh=export_wh,
            last_seen=now,
            ev_max_v2x_energy_wh=n.ev_max_v2x_energy_wh,
            min_soc_pct=n.min_soc_pct,
            meter_at=meter_at,
            station_connection=self.stations[v.key.station_id].connection,
            ocpp_version="ocpp2.1",
            requested_energy_transfer="DC_BPT",
        )

    # --- StationCommands --------------------------------------------------------------------
    async def _enter(self, command: str, station_id: str, args: dict[str, Any]) -> Station:
        self.log.append((command, station_id, args))
        await asyncio.sleep(0)
        st = self.stations[station_id]
        if st.fail is not None:
            raise st.fail
        if not st.online:
            raise TimeoutError(f"{station_id} is offline")
        return st

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: Mapping[str, Any]
    ) -> CommandResult:
        st = await self._enter("set", station_id, {"evse_id": evse_id, "profile": dict(profile)})
        st.set_calls += 1
        if st.reject:
            return CommandResult("Rejected", st.reject)
        new = {**profile, "evse_id": evse_id}
        st.profiles = [
            p
            for p in st.profiles
            if not (
                p["id"] == new["id"]
                or (
                    p["evse_id"] == evse_id
                    and p["stack_level"] == new["stack_level"]
                    and p["charging_profile_purpose"] == new["charging_profile_purpose"]
                )
            )
        ]
        st.profiles.append(new)
        return CommandResult("Accepted")

    async def clear_charging_profile(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> CommandResult:
        args = {
            "profile_id": profile_id,
            "evse_id": evse_id,
            "purpose": purpose,
            "stack_level": stack_level,
        }
        st = await self._enter("clear", station_id, args)
        keep = [
            p
            for p in st.profiles
            if not (
                (profile_id is None or p["id"] == profile_id)
                and (evse_id is None or p["evse_id"] == evse_id)
                and (purpose is None or p["charging_profile_purpose"] == purpose)
                and (stack_level is None or p["stack_level"] == stack_level)
            )
        ]
        status = "Accepted" if len(keep) < len(st.profiles) else "Unknown"
        st.profiles = keep
        return CommandResult(status)

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, schedule_update: Mapping[str, Any]
    ) -> CommandResult:
        st = await self._enter(
            "update", station_id, {"profile_id": profile_id, "update": dict(schedule_update)}
        )
        for p in st.profiles:
            if p["id"] == profile_id and p["charging_profile_kind"] == "Dynamic":
                p["charging_schedule"][0]["charging_schedule_period"][0].update(schedule_update)
                return CommandResult("Accepted")
        return CommandResult("Rejected", "no such Dynamic profile")

    async def afrr_signal(
        self, station_id: str, *, timestamp: datetime, signal: int
    ) -> CommandResult:
        st = await self._enter("afrr", station_id, {"timestamp": timestamp, "signal": signal})
        if st.reject:
            return CommandResult("Rejected", st.reject)
        return CommandResult("Accepted")

    async def get_charging_profiles(
        self,
        station_id: str,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> list[dict[str, Any]]:
        st = await self._enter("get", station_id, {"evse_id": evse_id, "purpose": purpose})
        return [
            dict(p)
            for p in st.profiles
            if (evse_id is None or p["evse_id"] == evse_id)
            and (purpose is None or p["charging_profile_purpose"] == purpose)
            and (stack_level is None or p["stack_level"] == stack_level)
        ]
