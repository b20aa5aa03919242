"""The background profile survey: installed profiles read before a station's first dispatch,
forgotten on disconnect, read inline when the survey has not reached a station, retried on
errors with backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.unit.core.dispatch.conftest import ev
from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService
from vpp_core.dispatch.survey import InstalledProfiles, ProfileSurvey

FAST = DispatchConfig(profile_survey_interval_s=0.01)
SLOW = DispatchConfig(profile_survey_interval_s=3600.0)  # one pass at start, none after


def foreign_profile(stack_level: int = 60) -> dict[str, Any]:
    period = {"start_period": 0, "limit": 3_000.0}
    schedule = {"id": 7, "charging_rate_unit": "W", "charging_schedule_period": [period]}
    return {"id": 7, "stack_level": stack_level, "charging_profile_purpose": "TxProfile",
            "evse_id": 1, "charging_profile_kind": "Absolute",
            "charging_schedule": [schedule]}  # fmt: skip


def gets(fleet: ScriptedFleet) -> list[str]:
    return [s for s, _ in fleet.calls("get")]


def now_request(clock: VirtualClock, target_w: float = -4_000.0) -> DispatchRequest:
    return DispatchRequest(target_w=target_w, start=clock.now(), duration_s=30, headroom=1.0)


async def test_survey_reads_every_connected_station_once_before_any_dispatch(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    for sid in ("CS1", "CS2", "CS3", "OFF"):
        fleet.add(sid, ev())
    fleet.stations["OFF"].online = False
    async with DispatchRunner(fleet, fleet, clock, FAST) as runner:
        await until(lambda: runner.survey.passes >= 5)
        assert all(runner.installed.known(s) for s in ("CS1", "CS2", "CS3"))
    assert sorted(gets(fleet)) == ["CS1", "CS2", "CS3"], "each connected station read once"
    assert fleet.calls("set") == [], "no dispatch ran"


async def test_dispatch_after_the_survey_reads_nothing_and_still_excludes_masked_sessions(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("EMS", ev())
    fleet.stations["EMS"].profiles.append(foreign_profile())
    async with DispatchRunner(fleet, fleet, clock, SLOW) as runner:
        await until(lambda: runner.survey.passes >= 1)
        surveyed = len(fleet.calls("get"))
        created = await DispatchService(runner).create(now_request(clock))
        p = await runner.wait(created.dispatch_id)
    assert surveyed == 2
    assert sorted(gets(fleet)) == ["CS1", "EMS"], "the dispatch sent no GetChargingProfiles"
    [summary_excluded] = created.summary.excluded  # the plan summary returned to the operator
    assert summary_excluded.key.station_id == "EMS"
    assert "stackLevel 60 masks the VPP's stackLevel 50" in summary_excluded.reason
    assert p.initial_plan is not None
    assert [e.key.station_id for e in p.initial_plan.excluded] == ["EMS"]
    assert {s for s, _ in fleet.calls("set")} == {"CS1"}, "the masked session got no profile"


async def test_a_station_that_disconnects_and_reconnects_is_read_again(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    async with DispatchRunner(fleet, fleet, clock, FAST) as runner:
        await until(lambda: runner.installed.known("CS1") and runner.installed.known("CS2"))
        fleet.stations["CS1"].online = False
        await until(lambda: not runner.installed.known("CS1"))
        # changed by its local EMS while away: the re-read must see it
        fleet.stations["CS1"].profiles.append(foreign_profile())
        fleet.stations["CS1"].online = True
        await until(lambda: runner.installed.known("CS1"))
        created = await DispatchService(runner).create(now_request(clock))
        p = await runner.wait(created.dispatch_id)
    assert gets(fleet).count("CS1") == 2, "read again after reconnecting"
    assert gets(fleet).count("CS2") == 1, "a station that stayed connected is not re-read"
    assert p.initial_plan is not None
    assert [e.key.station_id for e in p.initial_plan.excluded] == ["CS1"]


async def test_a_reconnect_between_two_looks_is_caught_by_the_dispatch(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    """A station that drops and comes back between two survey passes never looks offline to
    the survey; its new connection number tells the dispatch to read it again."""
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    async with DispatchRunner(fleet, fleet, clock, SLOW) as runner:
        await until(lambda: runner.survey.passes >= 1)
        fleet.stations["CS1"].profiles.append(foreign_profile())  # installed while away
        fleet.stations["CS1"].connection += 1
        service = DispatchService(runner)
        assert [e.key.station_id for e in service.preview(now_request(clock)).excluded] == []
        assert not runner.installed.known("CS1"), "the preview saw the reconnect"
        created = await service.create(now_request(clock))
        p = await runner.wait(created.dispatch_id)
    assert gets(fleet).count("CS1") == 2, "read again on its new connection"
    assert gets(fleet).count("CS2") == 1
    assert p.initial_plan is not None
    assert [e.key.station_id for e in p.initial_plan.excluded] == ["CS1"]
    assert all(station == "CS2" for station, _ in fleet.calls("set"))


async def test_the_survey_reads_a_reconnected_station_again(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, FAST) as runner:
        await until(lambda: runner.installed.known("CS1"))
        passes = runner.survey.passes
        fleet.stations["CS1"].profiles.append(foreign_profile())
        fleet.stations["CS1"].connection += 1
        await until(lambda: runner.survey.passes >= passes + 2)
        assert runner.installed.get("CS1") == [foreign_profile()]
    assert gets(fleet).count("CS1") == 2


async def test_a_station_plugged_in_after_the_survey_is_read_inline_by_the_dispatch(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, SLOW) as runner:
        await until(lambda: runner.survey.passes >= 1)
        fleet.add("LATE", ev())
        fleet.stations["LATE"].profiles.append(foreign_profile(stack_level=50))
        runner.start("d1", now_request(clock))
        p = await runner.wait("d1")
        assert runner.survey.passes == 1, "no survey pass ran in between"
    assert gets(fleet) == ["CS1", "LATE"]
    assert p.initial_plan is not None
    [excluded] = p.initial_plan.excluded
    assert excluded.key.station_id == "LATE"
    assert "already holds stackLevel 50" in excluded.reason
    assert {s for s, _ in fleet.calls("set")} == {"CS1"}


async def test_a_survey_error_is_retried_with_backoff_and_logged_once(
    fleet: ScriptedFleet, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fleet.add("CS1", ev())
    fleet.add("BAD", ev())
    fleet.stations["BAD"].fail = ConnectionError("socket closed")
    t = [0.0]
    survey = ProfileSurvey(
        fleet, InstalledProfiles(fleet), DispatchConfig(profile_survey_interval_s=5.0),
        monotonic=lambda: t[0],
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="vpp_core.dispatch.survey")
    await survey.survey_once()  # t=0: fails, retry at 5
    t[0] = 5.0
    await survey.survey_once()  # fails again, retry at 5 + 10
    t[0] = 10.0
    await survey.survey_once()  # backing off: not tried
    assert gets(fleet) == ["BAD", "CS1", "BAD"]
    assert not survey.profiles.known("BAD")
    fleet.stations["BAD"].fail = None
    t[0] = 15.0
    await survey.survey_once()
    assert gets(fleet) == ["BAD", "CS1", "BAD", "BAD"], "retried once the backoff elapsed"
    assert survey.profiles.known("BAD")
    assert survey.profiles.known("CS1")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "BAD" in warnings[0].getMessage()


async def test_a_survey_error_is_retried_by_the_running_survey(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("BAD", ev())
    fleet.stations["BAD"].fail = TimeoutError("no answer")
    async with DispatchRunner(fleet, fleet, clock, FAST) as runner:
        await until(lambda: len(fleet.calls("get")) >= 2)
        fleet.stations["BAD"].fail = None
        await until(lambda: runner.installed.known("BAD"))


async def test_a_dispatch_joins_a_survey_read_in_flight_instead_of_sending_another(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    held = fleet.hold("get_charging_profiles")
    profiles = InstalledProfiles(fleet)
    first = asyncio.create_task(profiles.read("CS1"))
    await held.entered.wait()
    second = asyncio.create_task(profiles.read("CS1"))
    held.release()
    assert await first == await second == []
    assert gets(fleet) == ["CS1"]


async def test_a_read_that_started_before_a_forget_is_not_recorded(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    held = fleet.hold("get_charging_profiles")
    profiles = InstalledProfiles(fleet)
    read = asyncio.create_task(profiles.read("CS1"))
    await held.entered.wait()
    profiles.forget("CS1")  # e.g. a Rejected arrived while the read was in flight
    held.release()
    assert await read == []
    assert not profiles.known("CS1"), "a stale answer must not stand for the station"


async def test_leaving_the_runner_stops_the_survey(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    async with asyncio.timeout(5):
        async with DispatchRunner(fleet, fleet, clock, FAST) as runner:
            await until(lambda: runner.survey.passes >= 1)
            task = next(t for t in asyncio.all_tasks() if t.get_name() == "profile-survey")
    assert task.cancelled()


async def test_a_survey_pass_skips_stations_a_dispatch_read_meanwhile(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    gate, waiting = asyncio.Event(), asyncio.Event()
    real_get = fleet.get_charging_profiles

    async def gated_get(station_id: str, **kw: Any) -> list[dict[str, Any]]:
        if station_id == "CS1":
            waiting.set()
            await gate.wait()
        return await real_get(station_id, **kw)

    fleet.get_charging_profiles = gated_get  # type: ignore[method-assign]
    profiles = InstalledProfiles(fleet)
    survey = ProfileSurvey(fleet, profiles, DispatchConfig(profile_survey_concurrency=1))
    survey_pass = asyncio.create_task(survey.survey_once())  # due: CS1 (blocked), then CS2
    await asyncio.wait_for(waiting.wait(), timeout=5)
    await profiles.read("CS2")  # a dispatch reads CS2 while the pass waits on CS1
    gate.set()
    await survey_pass
    assert gets(fleet) == ["CS2", "CS1"], "CS2 read once, by the dispatch"
    assert profiles.stations() == {"CS1", "CS2"}
