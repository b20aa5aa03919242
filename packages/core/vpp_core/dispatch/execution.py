"""One dispatch from start to report: plan, send, monitor, re-plan, clear, report.

Closed loop: every control period the fleet's measured power is recorded; sessions that ended,
went offline, went silent or had a command rejected drop out; the remainder is re-planned on
the sessions left, with the energy behind (or ahead of) target fed into the next plan's goal,
within the request's tracking contract: in power tracking the fleet is never commanded above
the target (plus its tolerance), so only under-delivery is filled, up to the target; in energy
tracking the catch-up may go ``max_overshoot_pct`` above it. A session that ended counts to
the registers of its ``TransactionEvent(Ended)``, so the loop chases no deficit that is not there.
Whatever happens (cancel, error), every profile sent is cleared at the end; and each profile's
``validTo`` is the window end, so a station that cannot be reached stops on its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from vpp_core.dispatch.clock import DispatchClock
from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.conflicts import masking_reason
from vpp_core.dispatch.eligibility import OCPP_201, PRIORITY_REASON, role_of
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.planner import DispatchPlan, plan_dispatch
from vpp_core.dispatch.ports import (
    CommandResult,
    EndedSession,
    FleetView,
    SessionState,
    StationCommands,
)
from vpp_core.dispatch.profiles import (
    PURPOSE,
    ProfileSpec,
    dispatch_profile,
    resume_profile,
    schedule_update,
)
from vpp_core.dispatch.progress import DispatchProgress, DispatchStatus
from vpp_core.dispatch.report import delivered_energy_wh
from vpp_core.dispatch.setpoints import Change, setpoint_changes
from vpp_core.dispatch.survey import InstalledProfiles

__all__ = ["DispatchExecution", "ExecutionContext"]

log = logging.getLogger(__name__)
Command = Callable[[], Awaitable[CommandResult]]
T = TypeVar("T")
#: Drop-outs after which a session may take part again once it is back (see _maybe_rejoin).
REJOINABLE = ("not connected", "no data for", "command failed")


@dataclass(eq=False)
class ExecutionContext:
    """What every dispatch shares: ports, clock, config, and runner-wide caches."""

    fleet: FleetView
    commands: StationCommands
    clock: DispatchClock
    config: DispatchConfig
    installed: InstalledProfiles  # station -> TxProfiles read (GetChargingProfiles)
    busy: dict[SessionKey, str]  # session -> dispatch id holding it


class DispatchExecution:
    def __init__(self, progress: DispatchProgress, ctx: ExecutionContext) -> None:
        self.p = progress
        self.ctx = ctx
        self.cfg = ctx.config
        self.sign = progress.request.direction.sign
        self.blocked: dict[SessionKey, str] = {}
        self.lag_caps: dict[SessionKey, float] = {}
        self.states: dict[SessionKey, SessionState] = {}
        self.changed_at: dict[SessionKey, datetime] = {}
        self.last_tick = progress.request.start
        self.target_wh = 0.0
        self.delivered_wh = 0.0
        self._specs: dict[SessionKey, ProfileSpec] = {}
        self._replan_due = False

    async def run(self) -> None:
        try:
            if await self._wait_until(self.p.request.start):
                self.p.status = DispatchStatus.RUNNING
                await self._begin()
                await self._track()
        except Exception as exc:  # the finally below still clears every profile sent
            log.exception("dispatch %s failed", self.p.dispatch_id)
            self.p.status = DispatchStatus.FAILED
            self.p.events.append(f"failed: {exc!r}")
        finally:
            await self._finish()

    # --- waiting -------------------------------------------------------------------------
    async def _wait_until(self, when: datetime) -> bool:
        """Sleep until ``when``; False if the dispatch was cancelled first."""
        if self.p.cancel_requested.is_set():
            return False
        sleeper = asyncio.ensure_future(self.ctx.clock.sleep_until(when))
        cancel = asyncio.ensure_future(self.p.cancel_requested.wait())
        try:
            await asyncio.wait({sleeper, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, cancel):
                task.cancel()
            await asyncio.gather(sleeper, cancel, return_exceptions=True)
        return not self.p.cancel_requested.is_set()

    # --- start ---------------------------------------------------------------------------
    async def _begin(self) -> None:
        now = self.ctx.clock.now()
        self.last_tick = now
        req = self.p.request
        for s in self.ctx.fleet.sessions():
            if (req.region and s.region != req.region) or (req.site and s.site != req.site):
                continue
            key = s.key
            holder = self.ctx.busy.get(key)
            if holder is not None and holder != self.p.dispatch_id:
                continue  # held by another dispatch (the service refuses overlaps; belt and braces)
            self.ctx.busy[key] = self.p.dispatch_id
            self.states[key] = s
            self.p.sessions[key] = SessionRecord(key, role=role_of(s.charge_only))
            self._read_registers(self.p.sessions[key], s)
        await self._check_conflicts(now)
        await self._plan_and_apply(now)

    async def _check_conflicts(self, now: datetime) -> None:
        """Exclude masked sessions. Stations the profile survey has not read yet (or forgot
        after a Rejected or a reconnect) are read here, joining a survey read in flight."""
        stations = sorted(self.ctx.installed.observe(self.states.values()))
        unread = [st for st in stations if not self.ctx.installed.known(st)]
        results = await self._fan_out([self._reader(st) for st in unread])
        read: dict[str, list[dict[str, Any]]] = {}
        failed: dict[str, str] = {}
        for station, res in zip(unread, results, strict=True):
            if isinstance(res, Exception):
                failed[station] = f"could not read installed profiles: {res!r}"
            else:
                read[station] = res  # used even if forgotten meanwhile (not recorded then)
        for key in self.states:
            installed = read.get(key.station_id) or self.ctx.installed.get(key.station_id)
            reason = failed.get(key.station_id) or masking_reason(
                installed or [],
                key,
                stack_level=self.cfg.stack_level,
                own_profile_id=self._spec(key).profile_id,
                window_start=now,
            )
            if reason:
                self.blocked[key] = reason

    async def _fan_out(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | Exception]:
        """Send ``calls`` to stations, ``command_concurrency`` at a time, each timed out."""
        return await fan_out(
            calls, concurrency=self.cfg.command_concurrency, timeout_s=self.cfg.command_timeout_s
        )

    def _reader(self, station: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        return lambda: self.ctx.installed.known_or_read(station)

    # --- planning and commands -----------------------------------------------------------
    async def _plan_and_apply(self, now: datetime) -> None:
        for _ in range(3):  # re-plan at once when sessions drop out while applying
            if self._replan_due:  # the set of sessions changed: the report marks it
                self.p.replans.append(now)
                self._replan_due = False
            plan = self._plan(now)
            self.p.plan = plan
            if self.p.initial_plan is None:
                self.p.initial_plan = plan
            if not await self._apply(plan, now):
                return

    def _goal_w(self, now: datetime) -> float:
        """Requested power plus the closed-loop correction for energy behind/ahead of target,
        never above the tracking contract's ceiling (see :meth:`_ceiling_w`)."""
        req = self.p.request
        remaining_s = (req.end - now).total_seconds()
        horizon_s = min(max(remaining_s, self.cfg.control_period_s), self.cfg.catch_up_horizon_s)
        sampled_wh = self.delivered_wh
        delivered_wh, source = delivered_energy_wh(list(self.p.sessions.values()), sampled_wh)
        if source == "meter registers":
            delivered_wh += self._unmetered_wh(now)
        behind_wh = self.sign * (self.target_wh - delivered_wh)
        limit_w = self.cfg.max_correction_frac * abs(req.target_w)
        correction_w = max(-limit_w, min(limit_w, behind_wh * 3600.0 / horizon_s))
        goal_w = abs(req.target_at(now)) + correction_w
        return max(0.0, min(goal_w, self._ceiling_w(now)))

    def _ceiling_w(self, now: datetime) -> float:
        """The most the fleet may be commanded (magnitude) for the coming control period.

        Power tracking: the target (plus ``tolerance_pct``), so the loop fills under-delivery
        up to the target and never beyond; energy tracking: ``max_overshoot_pct`` above it.
        The least target in force during the period: a schedule that steps down mid-period
        must not find the fleet above it."""
        req = self.p.request
        until = min(now + timedelta(seconds=self.cfg.control_period_s), req.end)
        ceiling_w = req.least_target_w(now, until) * (1.0 + req.overshoot_frac)
        return max(0.0, ceiling_w - self._stranded_w())

    def _stranded_w(self) -> float:
        """Setpoints (magnitude) that may still be in force at sessions dropped after a
        refused or failed command, until their clear is answered: the rest of the fleet is
        planned around them."""
        return sum(self.sign * r.stranded_w for r in self.p.sessions.values() if r.drop_reason)

    def _unmetered_wh(self, now: datetime) -> float:
        """Energy that flowed since each session's last meter sample, at its present power.

        ``target_wh`` runs up to ``now`` while the registers stop at the last sample (up to a
        sampling interval old); comparing the two as they are reads as a steady shortfall and
        the closed loop over-commits by about lag x power / horizon."""
        total_wh = 0.0
        for key, rec in self.p.sessions.items():
            state = self.states.get(key)
            if rec.drop_reason or state is None or state.meter_at is None:
                continue
            age_s = min(max((now - state.meter_at).total_seconds(), 0.0), self.cfg.stale_after_s)
            total_wh += state.present_power_w * age_s / 3600.0
        return total_wh

    def _plan(self, now: datetime) -> DispatchPlan:
        req = self.p.request
        columns = build_columns(
            list(self.states.values()),
            direction=req.direction,
            window_start=now,
            window_end=req.end,
            config=self.cfg.planner,
            station_limit_w=self.cfg.station_limit_w,
            site_limit_w=self.cfg.site_limit_w,
            blocked=self.blocked,
            moved_wh={
                k: max(0.0, self.sign * r.sampled_energy_wh) for k, r in self.p.sessions.items()
            },
            max_w_override=self.lag_caps,
        )
        return plan_dispatch(
            columns,
            target_w=self.sign * self._goal_w(now),
            duration_s=max((req.end - now).total_seconds(), 1e-3),
            headroom=req.headroom,
            algorithm=req.algorithm,
        )

    def _changes(self, plan: DispatchPlan, now: datetime | None = None) -> list[Change]:
        """The setpoints this plan sends (``setpoints.setpoint_changes``), at ``now``
        (default: the clock's)."""
        return setpoint_changes(
            self.p.sessions.values(),
            dict(plan.allocations()),
            sign=self.sign,
            target_w=self.p.request.target_w,
            ceiling_w=self._ceiling_w(now or self.ctx.clock.now()),
            config=self.cfg,
        )

    async def _apply(self, plan: DispatchPlan, now: datetime) -> bool:
        """Send changed setpoints; True if any session dropped out doing so."""
        changes = self._changes(plan, now)
        results = await self._fan_out([self._command(rec, new) for rec, new in changes])
        dropped = False
        for (rec, new), res in zip(changes, results, strict=True):
            if isinstance(res, Exception):
                # it may have landed: the station applies the larger of the two setpoints
                rec.stranded_w = max(rec.setpoint_w, new, key=abs)
                self._drop(rec, now, f"command failed: {res!r}")
                dropped = True
            elif res.status == "Accepted":
                if rec.setpoint_w == 0.0 and rec.first_setpoint_w == 0.0:
                    rec.first_setpoint_w = new
                rec.setpoint_w, rec.needs_resend = new, False
                self.changed_at[rec.key] = now
            else:
                self.ctx.installed.forget(rec.key.station_id)  # re-read before next use
                rec.stranded_w = rec.setpoint_w  # a refused change leaves the old one in force
                self._drop(
                    rec, now, f"profile rejected ({res.status}: {res.reason or 'no reason'})"
                )
                dropped = True
        await self._clear_stranded(now)
        return dropped

    async def _clear_stranded(self, now: datetime) -> None:
        """Clear the profile of sessions dropped with a setpoint still in force (a refused
        change, a failed command): left alone it applies to the window's end, and a target
        stepping down could find the fleet above it. Until a clear is answered the rest of
        the fleet is planned around that setpoint (``_stranded_w``)."""
        stranded = [r for r in self.p.sessions.values() if r.drop_reason and r.stranded_w]
        results = await self._fan_out([self._ender(r, now, force_clear=True) for r in stranded])
        for rec, res in zip(stranded, results, strict=True):
            if not isinstance(res, Exception) and res.status in ("Accepted", "Unknown"):
                rec.stranded_w = 0.0

    def _spec(self, key: SessionKey) -> ProfileSpec:
        """The session's profile settings, fixed for the dispatch (made once per session)."""
        spec = self._specs.get(key)
        if spec is None:
            legacy = key.station_id in self.cfg.legacy_negative_limit_stations
            state = self.states.get(key)
            version = state.ocpp_version if state is not None else None
            dynamic = version != OCPP_201 and (  # 2.0.1 has no Dynamic profiles
                self.cfg.dynamic_profiles or key.station_id in self.cfg.dynamic_profile_stations
            )
            spec = self._specs[key] = ProfileSpec(
                profile_id=self.cfg.profile_id_base + key.evse_id,
                transaction_id=key.transaction_id,
                stack_level=self.cfg.stack_level,
                valid_from=self.p.request.start,
                valid_to=self.p.request.end,
                max_offline_duration_s=self.cfg.max_offline_duration_s,
                kind="Dynamic" if dynamic and not legacy else "Absolute",
                legacy_negative_limit=legacy,
                ocpp_version=version,
            )
        return spec

    def _command(self, rec: SessionRecord, setpoint_w: float) -> Command:
        """The command carrying ``setpoint_w``; its payload is built when it is sent, so a
        fan-out's first commands leave before the last ones are shaped."""
        spec = self._spec(rec.key)
        if rec.profile_sent and spec.kind == "Dynamic" and not rec.needs_resend:
            return functools.partial(self._send_update, rec.key, spec, setpoint_w)
        rec.profile_sent = True  # before sending: a timed-out send may still have landed
        # a partial rather than a closure: fewer objects for the collector per command
        return functools.partial(self._send_profile, rec.key, spec, setpoint_w)

    async def _send_profile(
        self, key: SessionKey, spec: ProfileSpec, setpoint_w: float
    ) -> CommandResult:
        profile = dispatch_profile(spec, setpoint_w)
        return await self.ctx.commands.set_charging_profile(key.station_id, key.evse_id, profile)

    async def _send_update(
        self, key: SessionKey, spec: ProfileSpec, setpoint_w: float
    ) -> CommandResult:
        update = schedule_update(setpoint_w)
        return await self.ctx.commands.update_dynamic_schedule(
            key.station_id, spec.profile_id, update
        )

    def _drop(self, rec: SessionRecord, now: datetime, reason: str) -> None:
        rec.dropped_at, rec.drop_reason = now, reason
        self.blocked[rec.key] = reason
        self._replan_due = True
        self.p.events.append(
            f"{now.isoformat()} drop-out {rec.key.station_id}/{rec.key.evse_id}: {reason}"
        )

    # --- monitoring ----------------------------------------------------------------------
    async def _track(self) -> None:
        end = self.p.request.end
        while True:
            next_tick = min(self.last_tick + timedelta(seconds=self.cfg.control_period_s), end)
            reached = await self._wait_until(next_tick)
            now = self.ctx.clock.now()
            self._observe(now)
            if not reached or now >= end:
                return
            await self._release_priority_charging(now)
            await self._plan_and_apply(now)

    async def _release_priority_charging(self, now: datetime) -> None:
        """An EV that asked for priority charging gets its VPP profile cleared now, not at the
        window's end: a station that kept applying it would discharge against the driver's
        wish. The end-of-window clear sends it once more (a no-op answered Unknown)."""
        leaving = [
            r
            for r in self.p.sessions.values()
            if r.drop_reason == PRIORITY_REASON and r.profile_sent and r.end_status is None
        ]
        if not leaving:
            return
        results = await self._fan_out([self._ender(r, now, force_clear=True) for r in leaving])
        for rec, res in zip(leaving, results, strict=True):
            rec.end_status = f"error: {res!r}" if isinstance(res, Exception) else res.status

    def _dropout_reason(self, state: SessionState | None, now: datetime) -> str | None:
        if state is None:
            return "session ended"
        if not state.connected:
            return "not connected (station offline or EV unplugged)"
        if state.not_dispatchable is not None:  # priority charging: leaves, re-plan the rest
            return state.not_dispatchable
        silent_s = (now - state.last_seen).total_seconds()
        if silent_s > self.cfg.stale_after_s:
            return f"no data for {silent_s:.0f} s"
        return None

    def _observe(self, now: datetime) -> None:
        dt_s = (now - self.last_tick).total_seconds()
        if dt_s <= 0:
            return
        fresh = {s.key: s for s in self.ctx.fleet.sessions()}
        self.states = {k: fresh[k] for k in self.states if k in fresh}
        planned = dropout = delivered = 0.0
        for rec in self.p.sessions.values():
            if rec.drop_reason:
                if rec.key not in self.states:
                    rec.stranded_w = 0.0  # the session ended: its profile went with it
                self._maybe_rejoin(rec, now)
                continue
            if not rec.profile_sent:
                continue
            planned += rec.setpoint_w
            state = self.states.get(rec.key)
            reason = self._dropout_reason(state, now)
            if reason or state is None:
                dropout += rec.setpoint_w
                self._drop(rec, now, reason or "session ended")
                if state is None:
                    ended = self._read_final_registers(rec)
                    rec.ended_at = (ended.ended_at if ended else None) or now
                continue
            delivered += state.present_power_w
            rec.sampled_energy_wh += state.present_power_w * dt_s / 3600.0
            self._read_registers(rec, state)
            self._check_lag(rec, state, now)
        self._record(now, planned, dropout, delivered, dt_s)

    def _maybe_rejoin(self, rec: SessionRecord, now: datetime) -> None:
        """A session dropped for being offline, silent or failing a command, that is back and
        fresh, takes part again (its profile may still be installed: it is re-sent in full)."""
        reason = rec.drop_reason or ""
        if not reason.startswith(REJOINABLE) or rec.rejoins >= self.cfg.max_rejoins:
            return
        if self._dropout_reason(self.states.get(rec.key), now) is not None:
            return
        rec.notes.append(f"{now.isoformat()} rejoined after: {reason}")
        self.p.events.append(f"{now.isoformat()} rejoin {rec.key.station_id}/{rec.key.evse_id}")
        rec.rejoins += 1
        rec.drop_reason, rec.dropped_at, rec.needs_resend = None, None, True
        rec.stranded_w = 0.0  # its setpoint counts again as one in force
        self.blocked.pop(rec.key, None)
        self._replan_due = True

    def _record(
        self, now: datetime, planned: float, dropout: float, delivered: float, dt_s: float
    ) -> None:
        plan, target = self.p.plan, self.p.request.target_at(self.last_tick)
        self.p.intervals.append(
            IntervalRecord(
                t_start=self.last_tick,
                t_end=now,
                target_w=target,
                committed_w=plan.committed_w if plan else 0.0,
                planned_w=planned,
                dropout_w=dropout,
                delivered_w=delivered,
                available_w=plan.available_w if plan else 0.0,
                deployable_w=plan.deployable_w if plan else 0.0,
            )
        )
        self.p.live_power_w = delivered
        self.target_wh += target * dt_s / 3600.0
        self.delivered_wh += delivered * dt_s / 3600.0
        self.last_tick = now

    def _read_final_registers(self, rec: SessionRecord) -> EndedSession | None:
        """A session that ended: its registers as the Ended event left them (the energy it
        moved after its last periodic sample counts, so no phantom deficit is chased)."""
        ended = self.ctx.fleet.ended_session(rec.key)
        if ended is not None and rec.import_wh_start is not None:
            rec.import_wh, rec.export_wh = ended.energy_import_wh, ended.energy_export_wh
        return ended

    @staticmethod
    def _read_registers(rec: SessionRecord, state: SessionState) -> None:
        if rec.import_wh_start is None:
            rec.import_wh_start, rec.export_wh_start = (
                state.energy_import_wh,
                state.energy_export_wh,
            )
        rec.import_wh, rec.export_wh = state.energy_import_wh, state.energy_export_wh

    def _check_lag(self, rec: SessionRecord, state: SessionState, now: datetime) -> None:
        """A vehicle well short of its setpoint after the grace period: plan it at what it does.
        Judged on a meter sample taken after the grace period, not merely read after it: a
        sample from before the vehicle ramped would cap it at 0 W for the rest of the window."""
        since = self.changed_at.get(rec.key, now)
        sampled_at = state.meter_at or now
        if (
            rec.setpoint_w == 0.0
            or (sampled_at - since).total_seconds() < self.cfg.under_delivery_grace_s
        ):
            return
        achieved_w = self.sign * state.present_power_w
        if achieved_w < self.cfg.under_delivery_ratio * abs(rec.setpoint_w):
            if not rec.lagging:
                self.p.events.append(
                    f"{now.isoformat()} under-delivery {rec.key.station_id}/{rec.key.evse_id}: "
                    f"{achieved_w:.0f} W of {abs(rec.setpoint_w):.0f} W"
                )
            rec.lagging = True
            self.lag_caps[rec.key] = max(self.lag_caps.get(rec.key, 0.0), max(achieved_w, 0.0))

    # --- end -----------------------------------------------------------------------------
    async def _finish(self) -> None:
        # The final status is set only once the clears are answered and the report is built:
        # a client that sees "completed" may read the report and trust its cleared sessions.
        final = self.p.status
        if final is not DispatchStatus.FAILED:
            cancelled = self.p.cancel_requested.is_set()
            final = DispatchStatus.CANCELLED if cancelled else DispatchStatus.COMPLETED
        try:
            await self._end_profiles()
            await self._final_meter_readings()
            self.p.report = self.p.current_report(ramp_in_s=self.cfg.ramp_in_s, status=final)
        finally:
            self.p.status = final
            for key in self.p.sessions:
                if self.ctx.busy.get(key) == self.p.dispatch_id:
                    del self.ctx.busy[key]

    async def _final_meter_readings(self) -> None:
        """Wait (at most ``final_meter_wait_s``) for each delivering session's first meter
        sample taken at or after the window's end, and read its registers from it: the last
        sample inside the window lags the end by up to a sampling interval, which would
        under-report the tail of the delivery. The stations send one promptly, since the
        clear changes their charging rate."""
        end = min(self.p.request.end, self.ctx.clock.now())
        deadline = self.ctx.clock.now() + timedelta(seconds=self.cfg.final_meter_wait_s)
        waiting = {k for k, r in self.p.sessions.items() if r.profile_sent and not r.drop_reason}
        while waiting:
            try:
                fresh = {s.key: s for s in self.ctx.fleet.sessions()}
            except Exception:  # the report is still built from the readings we have
                log.exception("dispatch %s: final meter readings failed", self.p.dispatch_id)
                return
            for key in list(waiting):
                state = fresh.get(key)
                if state is None:  # ended meanwhile: its Ended reading is the last
                    self._read_final_registers(self.p.sessions[key])
                    waiting.discard(key)
                elif state.meter_at is not None and state.meter_at >= end:
                    self._read_registers(self.p.sessions[key], state)
                    waiting.discard(key)
            now = self.ctx.clock.now()
            if not waiting or now >= deadline:
                break
            await self.ctx.clock.sleep_until(min(deadline, now + timedelta(seconds=0.5)))

    def _ender(self, rec: SessionRecord, now: datetime, *, force_clear: bool) -> Command:
        key, commands, state = rec.key, self.ctx.commands, self.states.get(rec.key)
        if (
            self.cfg.resume_charging
            and not force_clear
            and state is not None
            and state.connected
            and not rec.drop_reason
        ):
            profile = resume_profile(self._spec(key), charge_limit_w=state.max_charge_w, start=now)
            return lambda: commands.set_charging_profile(key.station_id, key.evse_id, profile)
        return lambda: commands.clear_charging_profile(
            key.station_id, evse_id=key.evse_id, purpose=PURPOSE, stack_level=self.cfg.stack_level
        )

    async def _end_profiles(self) -> None:
        """Clear (or resume charging on) every session that was sent a profile; retry failures."""
        pending = [r for r in self.p.sessions.values() if r.profile_sent]
        force_clear: set[SessionKey] = set()
        for attempt in range(self.cfg.clear_attempts):
            now = self.ctx.clock.now()
            calls = [self._ender(r, now, force_clear=r.key in force_clear) for r in pending]
            results = await self._fan_out(calls)
            retry = []
            for rec, res in zip(pending, results, strict=True):
                if isinstance(res, Exception) or res.status not in ("Accepted", "Unknown"):
                    rec.end_status = f"error: {res!r}" if isinstance(res, Exception) else res.status
                    force_clear.add(rec.key)
                    retry.append(rec)
                else:
                    rec.end_status = res.status
            pending = retry
            if not pending or attempt + 1 == self.cfg.clear_attempts:
                break
            await self.ctx.clock.sleep_until(self.ctx.clock.now() + timedelta(seconds=1))
        for rec in pending:
            self.p.events.append(
                f"could not clear {rec.key.station_id}/{rec.key.evse_id} ({rec.end_status}); "
                f"its profile expires at {self.p.request.end.isoformat()}"
            )
