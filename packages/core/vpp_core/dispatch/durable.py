"""A dispatch that survives a core restart: ``DispatchExecution`` with its journal.

- Before a session is first sent a profile, the profile is journaled; a session whose
  profile cannot be journaled is not sent one (it drops out as a failed command and may
  rejoin once the journal works again). No station ever holds a VPP profile the journal
  does not name.
- Every control period (each re-plan) and at the end, what changed is written.
- A dispatch taken back after a restart (``resumed``) waits (at most ``resume_wait_s``) for
  its sessions' stations to reconnect and report, records the outage as one interval whose
  energy is what the meter registers moved, then re-plans on the fleet as it is and sends
  every session its full profile again (a station may have dropped it while offline).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from vpp_core.dispatch.execution import DispatchExecution, ExecutionContext
from vpp_core.dispatch.journal import DispatchJournal, SentProfile
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.planner import DispatchPlan
from vpp_core.dispatch.ports import SessionState
from vpp_core.dispatch.progress import DispatchProgress
from vpp_core.dispatch.recorder import DispatchRecorder

__all__ = ["NOT_JOURNALED", "DurableExecution"]

#: Drop-out reason of a session whose first profile could not be journaled (rejoinable).
NOT_JOURNALED = "command failed: the dispatch journal cannot record its profile"
_POLL_S = 0.5


class DurableExecution(DispatchExecution):
    def __init__(
        self,
        progress: DispatchProgress,
        ctx: ExecutionContext,
        journal: DispatchJournal,
        *,
        restarted_at: datetime | None = None,
    ) -> None:
        super().__init__(progress, ctx)
        self.restarted_at = restarted_at
        self.recorder = DispatchRecorder(
            journal,
            progress,
            self.sent_profile,
            profiled=(k for k, r in progress.sessions.items() if r.profile_sent),
            saved_intervals=len(progress.intervals),
        )

    def sent_profile(self, key: SessionKey) -> SentProfile:
        spec = self._spec(key)
        return SentProfile(spec.profile_id, spec.stack_level, spec.valid_from, spec.valid_to)

    async def run(self) -> None:
        # a scheduled dispatch is in the journal before it starts, and before the API says 201
        self.p.mark_recorded(await self.recorder.flush())
        await super().run()

    async def _begin(self) -> None:
        if self.restarted_at is None or not self.p.sessions:
            await super()._begin()
            return
        await self._await_reconnect()
        now = self.ctx.clock.now()
        self._cover_outage(now)
        await self._plan_and_apply(now)

    async def _apply(self, plan: DispatchPlan, now: datetime) -> bool:
        first = [rec for rec, _ in self._changes(plan) if not rec.profile_sent]
        journaled = await self.recorder.flush(sending=[rec.key for rec in first])
        if not journaled:
            for rec in first:
                self._drop(rec, now, NOT_JOURNALED)
        dropped = await super()._apply(plan, now)
        return dropped or (not journaled and bool(first))

    async def _finish(self) -> None:
        try:
            await super()._finish()
        finally:
            report = self.p.report
            await self.recorder.flush(closed=report is not None and not report.uncleared)

    # --- taken back after a restart ------------------------------------------------------
    async def _await_reconnect(self) -> None:
        """Until every session holding a profile is connected and has reported since the
        restart (or ended), at most ``resume_wait_s``."""
        assert self.restarted_at is not None
        clock = self.ctx.clock
        deadline = clock.now() + timedelta(seconds=self.cfg.resume_wait_s)
        waiting = {k for k, r in self.p.sessions.items() if r.profile_sent and not r.drop_reason}
        while waiting and not self.p.cancel_requested.is_set():
            fresh = {s.key: s for s in self.ctx.fleet.sessions()}
            waiting = {k for k in waiting if k in fresh and not self._back(fresh[k])}
            now = clock.now()
            if not waiting or now >= deadline:
                return
            await clock.sleep_until(min(deadline, now + timedelta(seconds=_POLL_S)))

    def _back(self, state: SessionState) -> bool:
        assert self.restarted_at is not None
        meter_at = state.meter_at
        return state.connected and meter_at is not None and meter_at >= self.restarted_at

    def _cover_outage(self, now: datetime) -> None:
        """One interval from the last one journaled to ``now``: its delivered power is what
        the sessions' meter registers moved over it."""
        req, intervals = self.p.request, self.p.intervals
        self.target_wh = sum(r.target_w * r.duration_s for r in intervals) / 3600.0
        self.delivered_wh = sum(r.delivered_w * r.duration_s for r in intervals) / 3600.0
        self.last_tick = intervals[-1].t_end if intervals else req.start
        self.p.plan = self.p.plan or self.p.initial_plan
        fresh = {s.key: s for s in self.ctx.fleet.sessions()}
        self.states = {k: fresh[k] for k in self.p.sessions if k in fresh}
        planned = moved_wh = 0.0
        for key, rec in self.p.sessions.items():
            if not rec.profile_sent or rec.drop_reason:
                continue
            planned += rec.setpoint_w
            rec.needs_resend = True  # the station may have dropped it while offline
            state = self.states.get(key)
            if state is not None:
                before_wh = rec.metered_energy_wh
                self._read_registers(rec, state)
                rec.sampled_energy_wh += rec.metered_energy_wh - before_wh
                moved_wh += rec.metered_energy_wh - before_wh
        outage_s = (now - self.last_tick).total_seconds()
        self.p.events.append(
            f"{now.isoformat()} resumed after a core restart: {outage_s:.0f} s since the last "
            f"journaled interval, {moved_wh:.1f} Wh metered over it"
        )
        if outage_s > 0:
            self._record(now, planned, 0.0, moved_wh * 3600.0 / outage_s, outage_s)
