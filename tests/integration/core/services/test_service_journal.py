"""The frequency services' journal (migration 8) on SQLite and PostgreSQL: a service with
every part set (plan, answers, events, capacity intervals, shares over time, activations)
reads back equal and gives the same report; closed ones are read back newest first up to the
limit, open ones always; a database that fails raises ``JournalError`` and counts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from tests.integration.core.fleet.databases import fleet_db_url
from tests.unit.core.services.test_report import activation, log_of
from vpp_core.dispatch.journal import JournalError
from vpp_core.dispatch.model import Direction, Exclusion, SessionKey
from vpp_core.fleet import FleetStore
from vpp_core.fleet.service_journal import SqlServiceJournal
from vpp_core.services.allocation import DirectionPlan, ServicePlan, SessionShare
from vpp_core.services.held import HeldService, ServiceStatus
from vpp_core.services.products import Product, ServiceRequest

__all__ = ["fleet_db_url"]
pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 3, 14, 7, tzinfo=UTC)


def held(service_id: str = "fs-1", **changes: object) -> HeldService:
    request = ServiceRequest.of(Product.FCR, capacity_w=10_000.0, start=T0, duration_s=1800.0)
    shares = tuple(SessionShare(SessionKey(f"CS{i}", 1, f"tx{i}"), 5_000.0, 5_000.0)
                   for i in range(2))  # fmt: skip
    plan = ServicePlan(
        directions=(DirectionPlan(Direction.DISCHARGE, 1e4, 2e4, 1e4),
                    DirectionPlan(Direction.CHARGE, 1e4, 2.2e4, 1e4)),
        headroom=0.9, endurance_s=900.0, shares=shares,
        excluded=(Exclusion(SessionKey("CS9", 1, "tx9"), "charge-only"),),
    )  # fmt: skip
    h = HeldService(service_id, request, plan, ServiceStatus.HOLDING)
    h.sent.update({s.key: "Accepted" for s in shares})
    h.cleared[shares[0].key] = "Unknown"
    h.dropped[SessionKey("CS8", 1, "tx8")] = "transaction ended"
    h.events.extend(["profiles sent: 2 accepted, 0 not"])
    h.share_log = log_of(2)
    full = {"discharge": 1e4, "charge": 1e4}
    for minute in (0, 5, 10):
        h.capacity.sample(T0 + timedelta(minutes=minute), planned=full, held=full,
                          deliverable={"discharge": 9e3, "charge": 1e4})  # fmt: skip
    h.activations.extend([activation(0), activation(1, respond=0.5)])
    for name, value in changes.items():
        setattr(h, name, value)
    return h


async def test_a_service_reads_back_as_written_and_reports_the_same(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        journal = SqlServiceJournal(store.engine, registry=CollectorRegistry())
        await journal.save(held(status=ServiceStatus.SENDING), closed=False)
        await journal.save(held(), closed=False)  # replaced
        (back,) = await journal.load(ended=10)
    finally:
        await store.close()
    want = held()
    assert (back.service_id, back.status, back.request) == ("fs-1", ServiceStatus.HOLDING,
                                                            want.request)  # fmt: skip
    assert back.plan == want.plan
    assert (back.sent, back.cleared, back.dropped) == (want.sent, want.cleared, want.dropped)
    assert back.events == want.events
    assert back.capacity.intervals == want.capacity.intervals
    assert [i.samples for i in back.capacity.intervals] == [2, 1]  # 14:07-14:15, 14:15-14:30
    assert back.share_log == want.share_log
    assert back.activations == want.activations
    assert back.responses() == want.responses()


async def test_closed_services_read_back_newest_first_up_to_the_limit(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    try:
        journal = SqlServiceJournal(store.engine, registry=CollectorRegistry())
        for n in range(1, 5):  # fs-1 .. fs-4 in that order; fs-3 is open
            status = ServiceStatus.HOLDING if n == 3 else ServiceStatus.ENDED
            await journal.save(held(f"fs-{n}", status=status), closed=n != 3)
        got = await journal.load(ended=2)
    finally:
        await store.close()
    assert [h.service_id for h in got] == ["fs-2", "fs-3", "fs-4"]


async def test_a_failing_database_raises_journal_error_and_counts_it(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    registry = CollectorRegistry()
    try:
        journal = SqlServiceJournal(store.engine, registry=registry)
        async with store.engine.begin() as conn:
            await conn.execute(text("DROP TABLE frequency_services"))
        with pytest.raises(JournalError, match="service journal: save failed"):
            await journal.save(held(), closed=False)
        with pytest.raises(JournalError, match="reading services failed"):
            await journal.load(ended=1)
    finally:
        await store.close()
    count = registry.get_sample_value
    assert count("vpp_service_journal_failures_total", {"operation": "save"}) == 1
    assert count("vpp_service_journal_failures_total", {"operation": "load"}) == 1
