"""Frequency services survive a core restart (``services.durable``): the core is stopped with
its services' tasks cancelled mid-window and nothing cleared (what ``kill -9`` leaves), and a
new core on the same journal takes them back: resumed in its window (profiles re-sent in full,
the leftover sweep leaves its sessions alone, it ends and clears as before), or closed
``interrupted`` with its report when past its window or configured not to resume (the sweep
clears every profile it left). A journal that fails is logged once and the service carries
on. The journal here is in memory but stores the codec's JSON (through ``json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from tests.unit.core.services.test_manager import CONFIG, PROFILE_ID, fcr
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.services.held import HeldService, ServiceStatus
from vpp_core.services.journal_codec import (
    held_from_json,
    held_to_json,
    request_from_json,
    request_to_json,
)
from vpp_core.services.manager import FrequencyServices
from vpp_core.supervision import TaskSupervisor

STATIONS = ("CS0", "CS1", "CS2")


class MemoryJournal:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, bool, str]] = {}
        self.failing = False

    async def save(self, held: HeldService, *, closed: bool) -> None:
        if self.failing:
            raise RuntimeError("database down")
        data = {"request": request_to_json(held.request), "state": held_to_json(held)}
        self.rows[held.service_id] = (held.status.value, closed, json.dumps(data))

    async def load(self, *, ended: int) -> Sequence[HeldService]:
        out = []
        for sid, (status, _closed, text) in self.rows.items():
            data = json.loads(text)
            out.append(held_from_json(sid, status, request_from_json(data["request"]),
                                      data["state"]))  # fmt: skip
        return out


def core(fleet: ScriptedFleet, clock: VirtualClock, journal: MemoryJournal,
         config: DispatchConfig = CONFIG) -> FrequencyServices:  # fmt: skip
    supervisor = TaskSupervisor(CollectorRegistry())
    return FrequencyServices(fleet, fleet, clock, config, supervisor=supervisor, journal=journal)


async def first_core_holding(
    fleet: ScriptedFleet, clock: VirtualClock, journal: MemoryJournal
) -> str:
    """A core that holds an FCR service a while, then stops as ``kill -9`` leaves it."""
    async with core(fleet, clock, journal) as services:
        held = services.create(fcr(clock))
        await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
        for _ in range(4):
            await clock.advance(5.0)  # into the window: capacity samples
        await until(lambda: journal.rows[held.service_id][0] == "holding", timeout_s=20)
        samples = held.capacity.intervals[0].samples
        assert samples >= 1
    assert all(fleet.profiles_at(s, stack_level=50) for s in STATIONS)  # nothing cleared
    fleet.log.clear()
    return held.service_id


async def test_a_service_in_its_window_is_resumed_and_ends_as_before(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    journal = MemoryJournal()
    service_id = await first_core_holding(fleet, clock, journal)
    before = journal.rows[service_id]

    async with core(fleet, clock, journal) as services:
        held = services.get(service_id)  # known again at once
        assert held.status in (ServiceStatus.SENDING, ServiceStatus.HOLDING)
        await until(lambda: len(fleet.calls("set")) == len(STATIONS), timeout_s=20)
        await until(lambda: {(s, 1) for s in STATIONS} <= services.leftovers.done, timeout_s=20)
        assert fleet.calls("clear") == []  # the sweep left the resumed service's profiles
        assert sorted(s for s, _ in fleet.calls("set")) == list(STATIONS)  # re-sent in full
        assert any("resumed after a core restart" in e for e in held.events)
        assert held.capacity.intervals[0].samples >= json.loads(before[2])["state"][
            "capacity"][0]["samples"]  # fmt: skip
        await clock.advance(600.0)
        await until(lambda: held.status is ServiceStatus.ENDED, timeout_s=20)
        assert sorted(s for s, _ in fleet.calls("clear")) == list(STATIONS)
        await until(lambda: journal.rows[service_id][:2] == ("ended", True), timeout_s=20)
    assert all(fleet.profiles_at(s, stack_level=50) == [] for s in STATIONS)


@pytest.mark.parametrize("why", ["past its window", "resume_after_restart is off"])
async def test_a_service_not_resumed_is_interrupted_and_its_profiles_cleared(
    fleet: ScriptedFleet, clock: VirtualClock, why: str
) -> None:
    journal = MemoryJournal()
    service_id = await first_core_holding(fleet, clock, journal)
    config = CONFIG
    if why == "past its window":
        await clock.advance(700.0)
    else:
        config = CONFIG.model_copy(update={"resume_after_restart": False})

    async with core(fleet, clock, journal, config) as services:
        held = services.get(service_id)
        assert held.status is ServiceStatus.INTERRUPTED
        assert any(why in e for e in held.events), held.events
        await until(lambda: len(fleet.calls("clear")) == len(STATIONS), timeout_s=20)
        assert {a["profile_id"] for _, a in fleet.calls("clear")} == {PROFILE_ID}
        assert fleet.calls("set") == []
        assert journal.rows[service_id][:2] == ("interrupted", True)
        assert held.capacity.intervals  # the report up to the restart
    assert all(fleet.profiles_at(s, stack_level=50) == [] for s in STATIONS)


async def test_a_failing_journal_is_logged_once_and_the_service_carries_on(
    fleet: ScriptedFleet, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    journal = MemoryJournal()
    journal.failing = True
    with caplog.at_level(logging.ERROR):
        async with core(fleet, clock, journal) as services:
            held = services.create(fcr(clock))
            await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
            for _ in range(3):
                await clock.advance(5.0)
            assert len(held.holding) == len(STATIONS)
    assert caplog.text.count("not recorded") == 1
    assert journal.rows == {}
