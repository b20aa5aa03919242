"""Taking back the journal's unfinished dispatches when the core starts.

For each dispatch the journal names as not closed (``journal.DispatchJournal.unfinished``):

- scheduled or running, inside its window, and ``resume_after_restart``: taken back
  (``durable.DurableExecution`` with ``restarted_at``);
- scheduled or running otherwise (configured not to resume, or past its window): closed
  ``interrupted`` with its report up to the crash, and swept;
- already ended with profiles it could not clear: swept.

A sweep (:class:`ProfileSweep`) clears each profile the dispatch sent, by its id, as the
session's station reconnects. Either way the dispatch's sessions are claimed (runner-wide
``busy``) before the runner takes new dispatches: a resumed one holds them as before, a swept
one until its profile there is cleared. No other dispatch can plan them meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.execution import ExecutionContext
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.journal import JournaledDispatch, SentProfile
from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import CommandResult, FleetView, SessionState, StationCommands
from vpp_core.dispatch.progress import DispatchProgress, DispatchStatus
from vpp_core.dispatch.recorder import DispatchRecorder

__all__ = [
    "CLEARED",
    "ProfileSweep",
    "clear_by_id",
    "restore_progress",
    "sessions_by_key",
    "should_resume",
]

log = logging.getLogger(__name__)
#: Answers to ClearChargingProfile that leave no VPP profile on the station.
CLEARED = ("Accepted", "Unknown")
#: Sessions no longer in the fleet (their station is offline or the EV left): tried every
#: this many rounds only (a clear to an offline station fails at once, but is logged).
_ABSENT_EVERY = 5


def restore_progress(journaled: JournaledDispatch) -> DispatchProgress:
    """The dispatch as it was when last journaled (a session that was sent a profile is
    marked so, even if the crash came before its answer)."""
    h = journaled.header
    progress = DispatchProgress(h.dispatch_id, h.request, status=DispatchStatus(h.status))
    progress.initial_plan = h.initial_plan
    progress.intervals = list(journaled.intervals)
    progress.events = list(h.events)
    progress.replans = list(h.replans)
    for s in journaled.sessions:
        if s.profile is not None:
            s.record.profile_sent = True
        progress.sessions[s.key] = s.record
    return progress


def should_resume(progress: DispatchProgress, *, now: datetime, resume: bool) -> bool:
    return progress.status.active and resume and now < progress.request.end


def sessions_by_key(fleet: FleetView) -> dict[SessionKey, SessionState]:
    """Each session the fleet knows: a station coming back (boot or reconnect) shows here as
    its sessions turning ``connected``."""
    return {s.key: s for s in fleet.sessions()}


async def clear_by_id(
    commands: StationCommands, config: DispatchConfig, profile_ids: Mapping[SessionKey, int]
) -> dict[SessionKey, CommandResult | Exception]:
    """ClearChargingProfile of each session's profile id on its station (fanned out: one
    bad station never stops the others); each session's answer or failure."""
    keys = list(profile_ids)
    calls = [
        lambda k=key: commands.clear_charging_profile(k.station_id, profile_id=profile_ids[k])
        for key in keys
    ]
    results = await fan_out(
        calls, concurrency=config.command_concurrency, timeout_s=config.command_timeout_s
    )
    return dict(zip(keys, results, strict=True))


def _uncleared(rec: SessionRecord) -> bool:
    return rec.profile_sent and rec.end_status not in CLEARED


class ProfileSweep:
    """Clears every profile an ended or interrupted dispatch left on stations, as they come
    back, and closes the dispatch in the journal when none is left (or it gives up)."""

    def __init__(
        self,
        progress: DispatchProgress,
        journaled: JournaledDispatch,
        ctx: ExecutionContext,
        recorder: DispatchRecorder,
        *,
        now: datetime,
    ) -> None:
        self.p, self.ctx, self.recorder = progress, ctx, recorder
        self.cfg = ctx.config
        profiles = _profiles(journaled)
        self.profile_ids = {key: p.profile_id for key, p in profiles.items()}
        valid_to = max((p.valid_to for p in profiles.values()), default=now)
        self.give_up_at = max(valid_to, now + timedelta(seconds=self.cfg.interrupted_clear_for_s))
        if progress.status.active:
            progress.status = DispatchStatus.INTERRUPTED
            progress.events.append(
                f"{now.isoformat()} interrupted by a core restart; its profiles are cleared "
                "as the stations reconnect"
            )

    def pending(self) -> list[SessionKey]:
        return [k for k, r in self.p.sessions.items() if k in self.profile_ids and _uncleared(r)]

    async def run(self) -> None:
        try:
            await self._sweep()
        finally:
            self.p.done.set()

    async def _sweep(self) -> None:
        clock, rounds = self.ctx.clock, 0
        await self.recorder.flush()
        while (pending := self.pending()) and clock.now() < self.give_up_at:
            if self.p.cancel_requested.is_set():
                return  # the core is stopping: the next start carries on
            present = sessions_by_key(self.ctx.fleet)
            absent_due = rounds % _ABSENT_EVERY == 0
            due = [
                k
                for k in pending
                if (k in present and present[k].connected) or (k not in present and absent_due)
            ]
            if due:
                await self._clear(due)
            rounds += 1
            retry = timedelta(seconds=self.cfg.interrupted_clear_retry_s)
            await clock.sleep_until(clock.now() + retry)
        for key in self.pending():
            self.p.events.append(
                f"gave up clearing {key.station_id}/{key.evse_id} "
                f"(profile {self.profile_ids.get(key)}): station not back"
            )
        self.p.report = self.p.current_report(ramp_in_s=self.cfg.ramp_in_s)
        self._release(self.p.sessions)
        await self.recorder.flush(closed=True)

    async def _clear(self, keys: list[SessionKey]) -> None:
        targets = {key: self.profile_ids[key] for key in keys}
        results = await clear_by_id(self.ctx.commands, self.cfg, targets)
        now = self.ctx.clock.now()
        cleared = []
        for key, res in results.items():
            if isinstance(res, CommandResult) and res.status in CLEARED:
                self.p.sessions[key].end_status = res.status
                self.p.events.append(
                    f"{now.isoformat()} cleared profile {self.profile_ids[key]} on "
                    f"{key.station_id}/{key.evse_id} ({res.status})"
                )
                cleared.append(key)
        if cleared:
            self._release(cleared)
            await self.recorder.flush()

    def _release(self, keys: Iterable[SessionKey]) -> None:
        for key in list(keys):
            if self.ctx.busy.get(key) == self.p.dispatch_id:
                del self.ctx.busy[key]


def _profiles(journaled: JournaledDispatch) -> dict[SessionKey, SentProfile]:
    return {s.key: s.profile for s in journaled.sessions if s.profile is not None}
