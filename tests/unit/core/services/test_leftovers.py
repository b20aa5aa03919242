"""A just-started core clears the service profile id an earlier core may have left on each
station (services are not resumed): a station that fails the clear is retried each round
while connected, logged once; a failure of the sweep itself is contained by the
TaskSupervisor (counted, logged once) and the sweep starts again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from v2g_sim.ev import EvSpec
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.ports import SessionState
from vpp_core.services.manager import SERVICE_PROFILE_OFFSET, FrequencyServices
from vpp_core.supervision import TaskSupervisor

CONFIG = DispatchConfig(profile_id_base=700_000_000, interrupted_clear_retry_s=1.0)
PROFILE_ID = 700_000_000 + SERVICE_PROFILE_OFFSET + 1
TASK = "frequency-service-leftovers"


def scripted() -> tuple[ScriptedFleet, VirtualClock]:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    for i in range(2):
        fleet.add(f"CS{i}", EvSpec(soc_pct=70.0, min_discharge_w=0.0, min_charge_w=0.0))
    return fleet, clock


def clears_to(fleet: ScriptedFleet, station: str) -> list[int | None]:
    return [a["profile_id"] for s, a in fleet.calls("clear") if s == station]


async def test_a_failing_clear_is_retried_while_connected_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet, clock = scripted()
    fleet.stations["CS0"].fail = ConnectionError("socket gone")
    supervisor = TaskSupervisor(CollectorRegistry())
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as services:
        await until(lambda: ("CS1", 1) in services.leftovers.done)
        assert ("CS0", 1) not in services.leftovers.done
        await clock.advance(1.0)
        await until(lambda: len(clears_to(fleet, "CS0")) == 2)
        fleet.stations["CS0"].fail = None
        await clock.advance(1.0)
        await until(lambda: ("CS0", 1) in services.leftovers.done)

        assert clears_to(fleet, "CS0") == [PROFILE_ID] * 3
        assert clears_to(fleet, "CS1") == [PROFILE_ID], "cleared once"
    failures = [r for r in caplog.records if "not cleared after a restart" in r.getMessage()]
    assert len(failures) == 1
    assert "CS0" in failures[0].getMessage()
    assert supervisor.failure_count(TASK) == 0


async def test_a_failing_sweep_is_contained_counted_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet, clock = scripted()
    real = fleet.sessions
    calls = 0

    def sessions() -> Sequence[SessionState]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("fleet view broken")
        return real()

    fleet.sessions = sessions  # type: ignore[method-assign]
    supervisor = TaskSupervisor(CollectorRegistry(), restart_min_s=0.01)
    caplog.set_level(logging.ERROR)
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as services:
        await until(lambda: {("CS0", 1), ("CS1", 1)} <= services.leftovers.done)

    assert supervisor.failure_count(TASK) == 1
    logged = [r for r in caplog.records if TASK in r.getMessage()]
    assert len(logged) == 1
    assert "fleet view broken" in logged[0].getMessage()


async def test_many_failing_clears_make_one_line_per_round_not_one_per_evse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    for i in range(6):
        fleet.add(f"CS{i}", EvSpec(soc_pct=70.0, min_discharge_w=0.0, min_charge_w=0.0))
        fleet.stations[f"CS{i}"].fail = TimeoutError("no answer")
    supervisor = TaskSupervisor(CollectorRegistry())
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as services:
        await until(lambda: all(len(clears_to(fleet, f"CS{i}")) == 1 for i in range(6)))
        await clock.advance(1.0)
        await until(lambda: all(len(clears_to(fleet, f"CS{i}")) == 2 for i in range(6)))
        assert not services.leftovers.done
    failures = [r.getMessage() for r in caplog.records if "not cleared" in r.getMessage()]
    assert len(failures) == 1, failures
    assert "on 6 EVSE(s)" in failures[0], failures[0]
    assert "and 3 more" in failures[0], failures[0]
