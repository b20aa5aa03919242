"""Durable dispatches against the scripted fleet: a core that dies mid-dispatch (its runner
frozen, as a ``kill -9`` leaves it: no command, no clear, nothing more journaled) and a new
runner started on what the journal held at that moment, with the VPP profiles still on the
stations.

- resumed (``resume_after_restart``): the new runner claims the sessions before it accepts
  anything, re-sends each profile, the report covers the whole window, the outage from the
  meter registers;
- not resumed: each profile the dispatch sent is cleared by its id, the dispatch closes
  ``interrupted`` with a report up to the crash, the journal closes it;
- a first profile that cannot be journaled is not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.core.dispatch.conftest import ev
from tests.unit.core.dispatch.memory_journal import MemoryJournal
from tests.unit.core.dispatch.scripted_fleet import T0, ScriptedFleet, VirtualClock, until
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.durable import NOT_JOURNALED
from vpp_core.dispatch.errors import DispatchNotRecordedError
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.ports import SessionState
from vpp_core.dispatch.progress import DispatchStatus
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService

START = T0 + timedelta(seconds=10)
REQUEST = DispatchRequest(target_w=-8_000.0, start=START, duration_s=120.0, headroom=1.0)
CRASH_AT = START + timedelta(seconds=40)
COMMANDS = frozenset(
    {"set_charging_profile", "clear_charging_profile", "update_dynamic_schedule",
     "get_charging_profiles"}
)  # fmt: skip


class Process:
    """What a runner sees of the world until its process is killed: then nothing answers
    and its clock never wakes it again."""

    def __init__(self, fleet: ScriptedFleet, clock: VirtualClock) -> None:
        self.fleet, self.clock, self.dead = fleet, clock, False
        self.buried = asyncio.Event()  # the test is done with it: let its tasks end

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep_until(self, when: datetime) -> None:
        if self.dead:
            await self.buried.wait()
            raise ConnectionError("the core is dead")
        await self.clock.sleep_until(when)

    def sessions(self) -> list[SessionState]:
        return [] if self.dead else self.fleet.sessions()

    def __getattr__(self, name: str) -> Any:  # the StationCommands
        if name not in COMMANDS:
            raise AttributeError(name)
        command = getattr(self.fleet, name)

        async def call(*args: Any, **kw: Any) -> Any:
            if self.dead:
                raise ConnectionError("the core is dead")
            return await command(*args, **kw)

        return call


@contextlib.asynccontextmanager
async def crashed_core(
    fleet: ScriptedFleet, clock: VirtualClock, journal: MemoryJournal
) -> AsyncIterator[MemoryJournal]:
    """Run dispatch d1 until CRASH_AT, then kill that core; yields the journal as it was."""
    process = Process(fleet, clock)
    left: list[MemoryJournal] = []

    def crash() -> None:
        left.append(journal.crash_copy())
        process.dead = True

    fleet.at(CRASH_AT, crash)
    runner = DispatchRunner(process, process, process, DispatchConfig(), journal=journal)  # type: ignore[arg-type]

    async def serve() -> None:
        async with runner:
            runner.start("d1", REQUEST)
            await asyncio.Event().wait()

    task = asyncio.create_task(serve())
    try:
        await until(lambda: left)
        yield left[0]
    finally:
        process.buried.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setpoints(fleet: ScriptedFleet, station: str) -> list[float]:
    return [a["profile"]["charging_schedule"][0]["charging_schedule_period"][0]["setpoint"]
            for s, a in fleet.calls("set") if s == station]  # fmt: skip


async def test_a_dispatch_resumed_after_a_restart_covers_the_whole_window(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    keys = [fleet.add("CS1", ev()), fleet.add("CS2", ev())]
    async with crashed_core(fleet, clock, MemoryJournal()) as journal:
        sent_before = len(fleet.calls("set"))
        assert sent_before >= 2
        assert all(fleet.profiles_at(k.station_id, stack_level=50) for k in keys)
        async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
            # claimed before anything else can plan them
            assert runner.busy_sessions == {k: "d1" for k in keys}
            preview = DispatchService(runner).preview(
                DispatchRequest(target_w=-4_000.0, start=clock.now(), duration_s=60.0)
            )
            assert {e.key: e.reason for e in preview.excluded} == {
                k: "held by dispatch d1" for k in keys
            }
            p = await runner.wait("d1")
    assert p.status is DispatchStatus.COMPLETED
    assert len(fleet.calls("set")) >= sent_before + 2, "each profile sent again in full"
    assert all(fleet.profiles_at(k.station_id, stack_level=50) == [] for k in keys)
    report = p.report
    assert report is not None
    assert report.intervals[0].t_start == START
    assert all(a.t_end == b.t_start for a, b in itertools.pairwise(report.intervals))
    assert report.intervals[-1].t_end == REQUEST.end
    assert report.energy_source == "meter registers"
    assert abs(report.energy_error_pct) < 5.0
    assert any("resumed after a core restart" in e for e in p.events)
    assert not await journal.unfinished(), "closed in the journal"


async def test_a_dispatch_not_resumed_is_cleared_by_profile_id_and_closed_interrupted(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    keys = [fleet.add("CS1", ev()), fleet.add("CS2", ev())]
    async with crashed_core(fleet, clock, MemoryJournal()) as journal:
        sets_before = len(fleet.calls("set"))
        config = DispatchConfig(resume_after_restart=False)
        async with DispatchRunner(fleet, fleet, clock, config, journal=journal) as runner:
            assert runner.busy_sessions == {k: "d1" for k in keys}
            p = await runner.wait("d1")
            assert runner.busy_sessions == {}, "released once cleared"
    assert p.status is DispatchStatus.INTERRUPTED
    clears = fleet.calls("clear")
    assert sorted(s for s, _ in clears) == ["CS1", "CS2"]
    assert all(a["profile_id"] == 700_000_001 for _, a in clears)
    assert all(fleet.profiles_at(k.station_id, stack_level=50) == [] for k in keys)
    assert len(fleet.calls("set")) == sets_before, "nothing sent after the restart"
    report = p.report
    assert report is not None
    assert report.status == "interrupted"
    assert report.intervals[0].t_start == START
    assert report.intervals[-1].t_end <= CRASH_AT
    assert not report.uncleared
    assert not await journal.unfinished()


async def test_a_first_profile_that_cannot_be_journaled_is_not_sent(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    journal = MemoryJournal()
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
        journal.failing = True
        runner.start("d1", DispatchRequest(target_w=-4_000.0, start=START, duration_s=30.0))
        p = await runner.wait("d1")
    assert fleet.calls("set") == []
    assert [r.drop_reason for r in p.sessions.values()] == [NOT_JOURNALED]


async def test_an_accepted_dispatch_is_in_the_journal_before_create_returns(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    journal = MemoryJournal()
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
        created = await DispatchService(runner, new_id=lambda: "d1").create(REQUEST)
        # no await between create() returning and this read: what a crash here would leave
        assert created.dispatch_id in journal.headers
        assert [d.header.dispatch_id for d in await journal.unfinished()] == ["d1"]
        runner.cancel("d1")


async def test_a_dispatch_the_journal_cannot_record_is_refused_and_sends_nothing(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    journal = MemoryJournal()
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
        journal.failing = True
        now_request = DispatchRequest(target_w=-4_000.0, start=T0, duration_s=30.0)
        with pytest.raises(DispatchNotRecordedError, match="nothing was sent"):
            await DispatchService(runner, new_id=lambda: "d1").create(now_request)
        p = runner.progress("d1")
        assert p.done.is_set()
        assert p.status is DispatchStatus.CANCELLED
        assert "refused: the dispatch journal could not record it" in p.events
    assert fleet.calls("set") == []


async def test_an_ended_dispatch_is_served_again_after_a_restart(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    leaves = fleet.add("CS2", ev())
    fleet.at(START + timedelta(seconds=20), lambda: fleet.unplug(leaves))  # a re-plan
    journal = MemoryJournal()
    request = DispatchRequest(target_w=-4_000.0, start=START, duration_s=60.0)
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
        runner.start("d1", request)
        before = await runner.wait("d1")
    assert before.status is DispatchStatus.COMPLETED
    assert before.report is not None
    assert before.report.replans, "the unplug made a re-plan, which the report marks"
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=journal) as runner:
        after = runner.progress("d1")  # was DispatchNotFoundError (a 404 at the API)
        assert after.done.is_set()
        assert runner.busy_sessions == {}, "an ended dispatch holds no session"
    assert after.status is DispatchStatus.COMPLETED
    assert after.report is not None
    assert after.report == before.report, "rebuilt from the journal, the same report"
    none_kept = DispatchConfig(reports_kept_after_restart=0)
    async with DispatchRunner(fleet, fleet, clock, none_kept, journal=journal) as runner:
        assert runner.all_progress() == []


async def test_a_dispatch_whose_task_dies_is_refused_and_failed_not_left_scheduled(
    fleet: ScriptedFleet, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(self: DispatchRunner, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(DispatchRunner, "_execute", dies)
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig(), journal=MemoryJournal()) as r:
        with pytest.raises(DispatchNotRecordedError, match="its task failed"):
            await DispatchService(r, new_id=lambda: "d1").create(REQUEST)
        p = r.progress("d1")
        assert p.status is DispatchStatus.FAILED
        assert p.done.is_set()
    assert fleet.calls("set") == []
