"""DispatchRunner: runs dispatches as tasks of its own TaskGroup (``async with``), next to the
background profile survey (``profile-survey`` task) that reads stations' installed profiles
before their first dispatch.

Leaving the ``async with`` cancels every dispatch still scheduled or running; each still clears
its profiles and writes its report before the runner exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from vpp_core.dispatch.clock import DispatchClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.conflicts import masking_reason
from vpp_core.dispatch.durable import DurableExecution
from vpp_core.dispatch.errors import DispatchError, DispatchNotFoundError
from vpp_core.dispatch.execution import DispatchExecution, ExecutionContext
from vpp_core.dispatch.journal import DispatchJournal, JournaledDispatch, JournalError
from vpp_core.dispatch.model import DispatchRequest, SessionKey
from vpp_core.dispatch.ports import FleetView, SessionState, StationCommands
from vpp_core.dispatch.progress import DispatchProgress, DispatchStatus
from vpp_core.dispatch.recorder import DispatchRecorder
from vpp_core.dispatch.recovery import ProfileSweep, restore_progress, should_resume
from vpp_core.dispatch.render import report_json
from vpp_core.dispatch.survey import InstalledProfiles, ProfileSurvey
from vpp_core.supervision import TaskSupervisor

__all__ = ["DispatchRunner", "PublishReport", "report_topic"]

log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3

#: Publishes (topic, payload); the core's MQTT client plugs in here.
PublishReport = Callable[[str, bytes], Awaitable[None]]


def report_topic(dispatch_id: str) -> str:
    return f"vpp/v1/dispatch/{dispatch_id}/report"


class DispatchRunner:
    def __init__(
        self,
        fleet: FleetView,
        commands: StationCommands,
        clock: DispatchClock,
        config: DispatchConfig,
        *,
        publish_report: PublishReport | None = None,
        supervisor: TaskSupervisor | None = None,
        journal: DispatchJournal | None = None,
    ) -> None:
        self.config = config
        self.supervisor = supervisor or TaskSupervisor()
        self.clock = clock
        self.fleet = fleet
        self.installed = InstalledProfiles(commands)
        self.survey = ProfileSurvey(fleet, self.installed, config)
        self._ctx = ExecutionContext(
            fleet=fleet,
            commands=commands,
            clock=clock,
            config=config,
            installed=self.installed,
            busy={},
        )
        self._publish = publish_report
        self.journal = journal
        self._runs: dict[str, DispatchProgress] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._survey_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._survey_task = self._tg.create_task(
            self.supervisor.keep_running("profile-survey", self.survey.run), name="profile-survey"
        )
        if self.journal is not None:
            await self._take_back(self.journal)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for progress in self._runs.values():
            progress.cancel_requested.set()
        if self._survey_task is not None:
            self._survey_task.cancel()  # runs until cancelled; dispatches finish on their own
            self._survey_task = None
        assert self._tg is not None
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None

    @property
    def busy_sessions(self) -> dict[SessionKey, str]:
        """Sessions held by running dispatches (a copy)."""
        return dict(self._ctx.busy)

    def known_conflicts(
        self, sessions: Sequence[SessionState], *, window_start: datetime
    ) -> dict[SessionKey, str]:
        """Profile conflicts already known from earlier GetChargingProfiles (no commands sent);
        stations not read yet are checked when the dispatch starts."""
        out = {}
        self.installed.observe(sessions)
        for s in sessions:
            installed = self.installed.get(s.station_id)
            key = s.key
            reason = installed and masking_reason(
                installed,
                key,
                stack_level=self.config.stack_level,
                own_profile_id=self.config.profile_id_base + s.evse_id,
                window_start=window_start,
            )
            if reason:
                out[key] = reason
        return out

    def start(self, dispatch_id: str, request: DispatchRequest) -> DispatchProgress:
        """Schedule a dispatch; it waits for ``request.start`` inside the runner's TaskGroup."""
        if self._tg is None:
            raise DispatchError("runner is not running (use it with 'async with')")
        if dispatch_id in self._runs:
            raise DispatchError(f"dispatch {dispatch_id} already exists")
        progress = DispatchProgress(dispatch_id, request)
        if self.journal is None:
            progress.mark_recorded(True)
        self._runs[dispatch_id] = progress
        self._tg.create_task(
            self.supervisor.contain("dispatch", self._settled(self._execute(progress), progress)),
            name=f"dispatch-{dispatch_id}",
        )
        return progress

    @staticmethod
    async def _settled(work: Awaitable[None], progress: DispatchProgress) -> None:
        """Run a dispatch's task; if it dies (the supervisor contains and counts that), the
        dispatch is failed and done, and a caller waiting for it to be recorded is told no
        (the API refuses it instead of promising a dispatch that will never run)."""
        try:
            await work
        except Exception as exc:
            if progress.status.active:
                progress.status = DispatchStatus.FAILED
                progress.events.append(f"failed: its task died: {exc!r}")
            raise
        finally:
            if not progress.recorded.is_set():
                progress.mark_recorded(False)
            progress.done.set()

    def progress(self, dispatch_id: str) -> DispatchProgress:
        try:
            return self._runs[dispatch_id]
        except KeyError:
            raise DispatchNotFoundError(dispatch_id) from None

    def has_running_dispatch(self) -> bool:
        """A dispatch is sending, tracking or clearing (not merely scheduled or done)."""
        return any(p.status is DispatchStatus.RUNNING for p in self._runs.values())

    def all_progress(self) -> list[DispatchProgress]:
        return list(self._runs.values())

    def cancel(self, dispatch_id: str) -> DispatchProgress:
        """Ask a dispatch to stop; it clears its profiles and reports (then ``done`` is set)."""
        progress = self.progress(dispatch_id)
        progress.cancel_requested.set()
        return progress

    async def wait(self, dispatch_id: str) -> DispatchProgress:
        progress = self.progress(dispatch_id)
        await progress.done.wait()
        return progress

    async def _execute(
        self, progress: DispatchProgress, *, restarted_at: datetime | None = None
    ) -> None:
        if self.journal is None:
            execution = DispatchExecution(progress, self._ctx)
        else:
            execution = DurableExecution(
                progress, self._ctx, self.journal, restarted_at=restarted_at
            )
        try:
            await execution.run()
            await self._publish_report(progress)
        finally:
            progress.done.set()

    # --- after a restart (recovery.py) ---------------------------------------------------
    async def _take_back(self, journal: DispatchJournal) -> None:
        """Resume or sweep every dispatch the journal has not closed; their sessions are
        claimed before this returns, so before any new dispatch is accepted."""
        await self._restore_ended(journal)
        unfinished = await self._read_unfinished(journal)
        now = self.clock.now()
        for journaled in unfinished:
            progress = restore_progress(journaled)
            self._runs[progress.dispatch_id] = progress
            resume = should_resume(progress, now=now, resume=self.config.resume_after_restart)
            sweep = None if resume else self._sweep(progress, journaled, journal, now)
            claimed = list(progress.sessions) if sweep is None else sweep.pending()
            for key in claimed:
                self._ctx.busy[key] = progress.dispatch_id
            log.warning(
                "dispatch %s (%s) taken back after a restart: %s, %d sessions claimed",
                progress.dispatch_id, progress.status.value,
                "resumed" if resume else "clearing its profiles", len(claimed),
            )  # fmt: skip
            assert self._tg is not None
            work = self._execute(progress, restarted_at=now) if sweep is None else sweep.run()
            self._tg.create_task(
                self.supervisor.contain("dispatch", work), name=f"dispatch-{progress.dispatch_id}"
            )

    def _sweep(
        self,
        progress: DispatchProgress,
        journaled: JournaledDispatch,
        journal: DispatchJournal,
        now: datetime,
    ) -> ProfileSweep:
        profiles = {s.key: s.profile for s in journaled.sessions if s.profile is not None}
        recorder = DispatchRecorder(
            journal,
            progress,
            profiles.__getitem__,
            profiled=profiles,
            saved_intervals=len(progress.intervals),
        )
        return ProfileSweep(progress, journaled, self._ctx, recorder, now=now)

    async def _restore_ended(self, journal: DispatchJournal) -> None:
        """Ended dispatches, read-only: their reports, rebuilt from what was journaled, are
        served again (a completed dispatch was a 404 after a restart)."""
        limit = self.config.reports_kept_after_restart
        try:
            ended = await journal.ended(limit) if limit else []
        except JournalError as exc:
            log.error("ended dispatches not restored (their reports 404 until then): %s", exc)
            return
        for journaled in ended:
            progress = restore_progress(journaled)
            progress.report = progress.current_report(ramp_in_s=self.config.ramp_in_s)
            progress.mark_recorded(True)
            progress.done.set()
            self._runs[progress.dispatch_id] = progress

    async def _read_unfinished(self, journal: DispatchJournal) -> list[JournaledDispatch]:
        for attempt in range(_READ_ATTEMPTS):
            try:
                return await journal.unfinished()
            except JournalError as exc:
                log.error("reading unfinished dispatches (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(1.0)
        log.error("unfinished dispatches not taken back: the dispatch journal cannot be read")
        return []

    async def _publish_report(self, progress: DispatchProgress) -> None:
        if self._publish is None or progress.report is None:
            return
        topic = report_topic(progress.dispatch_id)
        try:
            await self._publish(topic, report_json(progress.report))
        except Exception as exc:  # the report is still stored and served by the API
            log.warning("publishing report of %s failed: %r", progress.dispatch_id, exc)
            progress.events.append(f"report not published on {topic}: {exc!r}")
