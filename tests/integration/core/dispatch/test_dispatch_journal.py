"""The dispatch journal (migration 3) on SQLite and PostgreSQL: a dispatch written as it runs
reads back equal, profiles sent included; closing it takes it out of what a restart resumes
(and into the ended ones whose reports a restart serves again); a
database that fails raises ``JournalError`` and counts it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from tests.integration.core.fleet.databases import fleet_db_url
from vpp_core.dispatch.journal import (
    DispatchHeader,
    JournaledSession,
    JournalError,
    SentProfile,
)
from vpp_core.dispatch.ledger import IntervalRecord, SessionRecord
from vpp_core.dispatch.model import Direction, DispatchRequest, Exclusion, SessionKey
from vpp_core.dispatch.planner import DispatchPlan
from vpp_core.fleet import FleetStore
from vpp_core.fleet.dispatch_journal import SqlDispatchJournal

__all__ = ["fleet_db_url"]
pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KEY_A = SessionKey("CS-0001", 1, "tx-a")
KEY_B = SessionKey("CS-0002", 2, "tx-b")


def _plan() -> DispatchPlan:
    allocation = np.array([-4000.0, 0.0])
    allocation.setflags(write=False)
    return DispatchPlan(
        direction=Direction.DISCHARGE, algorithm="proportional", requested_w=-8000.0,
        committed_w=-4000.0, available_w=-4500.0, deployable_w=4050.0, headroom=0.9,
        duration_s=600.0, keys=(KEY_A, KEY_B), allocation_w=allocation, shortfall_w=4000.0,
        shortfall_reason="capacity", excluded=(Exclusion(KEY_B, "profile conflict: x"),),
    )  # fmt: skip


def _header(**changes: object) -> DispatchHeader:
    request = DispatchRequest(
        target_w=-8000.0, start=T0, duration_s=600.0, region="r1", schedule_w=(-8000.0, -6000.0),
        schedule_step_s=300.0,
    )  # fmt: skip
    header = DispatchHeader("d-1", request, "running", _plan(), ("started",), closed=False)
    return replace(header, **changes)  # type: ignore[arg-type]


def _sessions() -> list[JournaledSession]:
    a = SessionRecord(
        KEY_A, first_setpoint_w=-4000.0, setpoint_w=-3500.0, profile_sent=True,
        import_wh_start=10.0, export_wh_start=2.0, import_wh=10.0, export_wh=30.5,
        sampled_energy_wh=-28.0, dropped_at=T0 + timedelta(seconds=30), drop_reason="x",
        lagging=True, rejoins=1, needs_resend=True, end_status=None, notes=["n1"],
    )  # fmt: skip
    profile = SentProfile(700_000_001, 50, T0, T0 + timedelta(seconds=600))
    return [JournaledSession(a, profile), JournaledSession(SessionRecord(KEY_B), None)]


def _interval(i: int) -> IntervalRecord:
    t = T0 + timedelta(seconds=5 * i)
    return IntervalRecord(t, t + timedelta(seconds=5), -8000.0, -4000.0, -4000.0, 0.0,
                          -3900.5, 4500.0, 4050.0)  # fmt: skip


async def test_a_dispatch_reads_back_as_written(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        journal = SqlDispatchJournal(store.engine, registry=CollectorRegistry())
        await journal.save_header(_header())
        await journal.save_sessions("d-1", _sessions())
        await journal.append_intervals("d-1", [_interval(0), _interval(1)])
        # a later write of the same interval changes nothing; sessions and header are replaced
        await journal.append_intervals("d-1", [_interval(1), _interval(2)])
        cleared = replace(_sessions()[0].record, end_status="Accepted")
        await journal.save_sessions("d-1", [replace(_sessions()[0], record=cleared)])
        replanned = (T0 + timedelta(seconds=42.5),)
        await journal.save_header(
            _header(status="interrupted", events=("started", "crash"), replans=replanned)
        )

        (back,) = await journal.unfinished()
    finally:
        await store.close()
    assert back.header.request == _header().request
    assert back.header.status == "interrupted"
    assert back.header.events == ("started", "crash")
    assert back.header.replans == (T0 + timedelta(seconds=42.5),)
    plan = back.header.initial_plan
    assert plan is not None
    assert plan.keys == (KEY_A, KEY_B)
    assert list(plan.allocation_w) == [-4000.0, 0.0]
    assert plan.excluded == _plan().excluded
    assert (plan.committed_w, plan.shortfall_reason) == (-4000.0, "capacity")
    assert back.intervals == (_interval(0), _interval(1), _interval(2))
    a, b = back.sessions
    assert a.record == cleared
    assert a.profile == SentProfile(700_000_001, 50, T0, T0 + timedelta(seconds=600))
    assert (b.record, b.profile) == (SessionRecord(KEY_B), None)


async def test_a_closed_dispatch_is_not_loaded_again(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        journal = SqlDispatchJournal(store.engine, registry=CollectorRegistry())
        await journal.save_header(_header())
        await journal.save_header(_header(dispatch_id="d-2", initial_plan=None))
        await journal.save_header(_header(status="completed", closed=True))
        (left,) = await journal.unfinished()
    finally:
        await store.close()
    assert (left.header.dispatch_id, left.header.initial_plan) == ("d-2", None)


async def test_ended_dispatches_read_back_newest_first_up_to_the_limit(
    fleet_db_url: str,
) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        journal = SqlDispatchJournal(store.engine, registry=CollectorRegistry())
        for n in range(1, 5):  # d-1 .. d-4 in that order; d-3 is still running
            await journal.save_header(_header(dispatch_id=f"d-{n}", closed=n != 3))
        await journal.save_sessions("d-4", _sessions())
        await journal.append_intervals("d-4", [_interval(0)])
        newest_two = await journal.ended(2)
        every = await journal.ended(10)
    finally:
        await store.close()
    assert [d.header.dispatch_id for d in newest_two] == ["d-2", "d-4"]
    assert [d.header.dispatch_id for d in every] == ["d-1", "d-2", "d-4"]
    assert newest_two[1].intervals == (_interval(0),)
    assert newest_two[1].sessions[0].record == _sessions()[0].record


async def test_a_failing_database_raises_journal_error_and_counts_it(fleet_db_url: str) -> None:
    registry = CollectorRegistry()
    store = await FleetStore.open(fleet_db_url)
    journal = SqlDispatchJournal(store.engine, registry=registry)
    try:
        async with store.engine.begin() as conn:  # the database refuses every interval now
            await conn.execute(text("DROP TABLE dispatch_intervals"))
        with pytest.raises(JournalError, match="append_intervals"):
            await journal.append_intervals("d-1", [_interval(0)])
        await journal.save_header(_header())  # the rest of the journal still works
    finally:
        await store.close()
    failures = registry.get_sample_value(
        "vpp_dispatch_journal_failures_total", {"operation": "append_intervals"}
    )
    assert failures == 1.0
