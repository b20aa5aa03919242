"""Holding a frequency service: each planned session gets its LocalFrequency TxProfile (OCA 2.1
schema-valid on the wire), the profiles are cleared by id at the window's end or when the
operator ends it early, and a failure of one service is contained (issue 19, core half)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.doubles.oca_schemas import SchemaBook
from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from v2g_common.ocpp21.messages import call
from v2g_common.ocpp21.payloads import codec_for
from v2g_sim.ev import EvSpec
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.services.manager import SERVICE_PROFILE_OFFSET, FrequencyServices, ServiceStatus
from vpp_core.services.products import Product, ServiceRequest
from vpp_core.supervision import TaskSupervisor

CONFIG = DispatchConfig(stack_level=50, profile_id_base=700_000_000, command_timeout_s=1.0)
PROFILE_ID = 700_000_000 + SERVICE_PROFILE_OFFSET + 1


@pytest.fixture
async def services(fleet: ScriptedFleet, clock: VirtualClock) -> AsyncIterator[FrequencyServices]:
    supervisor = TaskSupervisor(CollectorRegistry())
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as s:
        # A core just started clears the service profile id on each station once (nothing
        # there yet); the tests look at what the services send after that.
        evses = {(f"CS{i}", 1) for i in range(3)}
        await until(lambda: evses <= s.leftovers.done, timeout_s=20)
        assert {(st, a["profile_id"]) for st, a in fleet.calls("clear")} == {
            (st, PROFILE_ID) for st, _ in evses
        }
        fleet.log.clear()
        yield s


def fcr(clock: VirtualClock, capacity_w: float = 15_000.0) -> ServiceRequest:
    start = clock.now() + timedelta(seconds=10)
    return ServiceRequest.of(Product.FCR, capacity_w=capacity_w, start=start, duration_s=600.0)


def sent_profiles(fleet: ScriptedFleet) -> dict[str, dict[str, Any]]:
    return {station: args["profile"] for station, args in fleet.calls("set")}


async def test_each_session_gets_its_share_as_a_schema_valid_local_frequency_profile(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    request = fcr(clock)
    held = services.create(request)
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)

    profiles = sent_profiles(fleet)
    assert set(profiles) == {"CS0", "CS1", "CS2"}
    book, codec = SchemaBook("ocpp2.1"), codec_for("ocpp2.1")
    for station, profile in profiles.items():
        _, wire = codec.encode_request(call.SetChargingProfile(evse_id=1, charging_profile=profile))
        assert book.errors("SetChargingProfileRequest", wire) == []
        assert (profile["id"], profile["stack_level"]) == (PROFILE_ID, 50)
        assert profile["valid_from"] == request.start.isoformat().replace("+00:00", "Z")
        assert profile["valid_to"] == request.end.isoformat().replace("+00:00", "Z")
        assert profile["transaction_id"] == f"tx-{station}-1"
        (period,) = profile["charging_schedule"][0]["charging_schedule_period"]
        assert period["operation_mode"] == "LocalFrequency"
        assert period["v2x_baseline"] == 0.0
        curve = [(p["frequency"], p["power"]) for p in period["v2x_freq_watt_curve"]]
        assert curve == [
            (49.8, -5_000.0),
            (49.9899, -252.5),
            (49.99, 0.0),
            (50.01, 0.0),
            (50.0101, 252.5),
            (50.2, 5_000.0),
        ]
        assert (period["discharge_limit"], period["limit"]) == (-5_000.0, 5_000.0)
    assert [s.discharge_w for s in held.holding] == [5_000.0] * 3
    assert fleet.calls("clear") == []


async def test_profiles_are_cleared_by_id_at_the_end_of_the_window(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = services.create(fcr(clock))
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    assert all(fleet.profiles_at(s, stack_level=50) for s in ("CS0", "CS1", "CS2"))

    await clock.advance(609.0)
    assert held.status is ServiceStatus.HOLDING, "held until the window's end"
    await clock.advance(1.0)
    await until(lambda: held.status is ServiceStatus.ENDED, timeout_s=20)

    clears = fleet.calls("clear")
    assert sorted(s for s, _ in clears) == ["CS0", "CS1", "CS2"]
    assert {a["profile_id"] for _, a in clears} == {PROFILE_ID}
    assert all(a["stack_level"] is None and a["purpose"] is None for _, a in clears)
    assert all(fleet.profiles_at(s, stack_level=50) == [] for s in ("CS0", "CS1", "CS2"))


async def test_ending_early_clears_before_returning(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = services.create(fcr(clock))
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)

    ended = await services.end(held.service_id)

    assert ended.status is ServiceStatus.CANCELLED
    assert all(fleet.profiles_at(s, stack_level=50) == [] for s in ("CS0", "CS1", "CS2"))
    assert set(ended.cleared.values()) == {"Accepted"}


async def test_a_rejecting_station_is_reported_and_a_second_service_skips_busy_sessions(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    fleet.stations["CS1"].reject = "NotSupported"
    first = services.create(fcr(clock))
    await until(lambda: first.status is ServiceStatus.HOLDING, timeout_s=20)
    assert [k.station_id for k, a in first.sent.items() if a == "Rejected: NotSupported"] == ["CS1"]
    assert "profiles sent: 2 accepted, 1 not" in first.events

    second = services.create(fcr(clock, 1_000.0))
    reasons = {e.key.station_id: e.reason for e in second.plan.excluded}
    assert reasons == {
        s: f"holds frequency service {first.service_id}" for s in ("CS0", "CS1", "CS2")
    }
    assert "capacity not covered" in second.events[0]


async def test_a_failing_station_does_not_end_the_service_or_the_component(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    fleet.stations["CS2"].fail = ConnectionError("socket closed")
    held = services.create(fcr(clock))
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    assert held.sent[next(k for k in held.sent if k.station_id == "CS2")].startswith(
        "error: ConnectionError"
    )
    await clock.advance(610.0)
    await until(lambda: held.status is ServiceStatus.ENDED, timeout_s=20)
    assert "1 profiles could not be cleared" in held.events


async def test_a_failure_inside_a_service_is_contained_counted_and_its_profiles_cleared(
    fleet: ScriptedFleet, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = TaskSupervisor(CollectorRegistry())
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as services:
        real_sleep = clock.sleep_until

        async def broken_sleep(when: Any) -> None:
            raise RuntimeError("clock gone")

        monkeypatch.setattr(clock, "sleep_until", broken_sleep)
        held = services.create(fcr(clock))
        await until(lambda: held.status is ServiceStatus.FAILED, timeout_s=20)
        assert supervisor.failure_count(f"frequency-service-{held.service_id}") == 1
        assert all(fleet.profiles_at(s, stack_level=50) == [] for s in ("CS0", "CS1", "CS2"))

        monkeypatch.setattr(clock, "sleep_until", real_sleep)
        after = services.create(fcr(clock))
        await until(lambda: after.status is ServiceStatus.HOLDING, timeout_s=20)


async def test_a_session_in_a_running_dispatch_is_left_out(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    in_dispatch = {k: "d7" for k in fleet.vehicles if k.station_id == "CS0"}
    async with FrequencyServices(
        fleet, fleet, clock, CONFIG, in_dispatch=lambda: in_dispatch
    ) as services:
        held = services.create(fcr(clock, 10_000.0))
        assert {e.key.station_id: e.reason for e in held.plan.excluded} == {"CS0": "in dispatch d7"}
        assert sorted(s.key.station_id for s in held.plan.shares) == ["CS1", "CS2"]
        await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
        assert "CS0" not in sent_profiles(fleet)


def curve_peak_w(profile: dict[str, Any]) -> float:
    (period,) = profile["charging_schedule"][0]["charging_schedule_period"]
    return float(-period["v2x_freq_watt_curve"][0]["power"])


async def test_a_session_that_drops_out_hands_its_share_to_the_others(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = services.create(fcr(clock))
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    gone = next(k for k in fleet.vehicles if k.station_id == "CS0")
    sets_before = len(fleet.calls("set"))

    fleet.unplug(gone)
    await clock.advance(CONFIG.control_period_s)
    await until(lambda: gone in held.cleared, timeout_s=20)

    assert held.dropped == {gone: "transaction ended"}
    resent = fleet.calls("set")[sets_before:]
    assert sorted(s for s, _ in resent) == ["CS1", "CS2"]
    assert [curve_peak_w(a["profile"]) for _, a in resent] == [7_500.0, 7_500.0]
    assert {a["profile"]["id"] for _, a in resent} == {PROFILE_ID}, "replaced in place"
    assert held.plan.feasible
    assert sum(s.discharge_w for s in held.holding) == pytest.approx(15_000.0)
    assert ("CS0", {"profile_id": PROFILE_ID, "evse_id": None, "purpose": None,
                    "stack_level": None}) in fleet.calls("clear")  # fmt: skip
    assert any(e == "re-planned after drop-outs: CS0: transaction ended" for e in held.events)


async def test_a_refused_share_moves_to_a_station_that_accepts(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    fleet.stations["CS1"].reject = "NotSupported"
    held = services.create(fcr(clock))
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    assert sum(s.discharge_w for s in held.holding) == pytest.approx(10_000.0)

    await clock.advance(CONFIG.control_period_s)
    # the re-plan sends first, then clears what left the plan: the clear's answer comes last
    await until(lambda: any(k.station_id == "CS1" for k in held.cleared), timeout_s=20)
    assert len(fleet.calls("set")) == 5

    refused = next(k for k in held.dropped)
    assert (refused.station_id, held.dropped[refused]) == (
        "CS1",
        "profile not accepted (Rejected: NotSupported)",
    )
    assert sum(s.discharge_w for s in held.holding) == pytest.approx(15_000.0)
    assert [s.key.station_id for s in held.plan.shares] == ["CS0", "CS2"]


async def test_a_dispatch_leaves_out_the_sessions_holding_a_service(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    service = services.create(fcr(clock, 10_000.0))
    await until(lambda: service.status is ServiceStatus.HOLDING, timeout_s=20)
    fleet.add("CS9", EvSpec(soc_pct=70.0, min_discharge_w=0.0))  # free for the dispatch
    start = clock.now() + timedelta(seconds=10)
    async with DispatchRunner(fleet, fleet, clock, CONFIG) as runner:
        progress = runner.start(
            "d1", DispatchRequest(target_w=-4_000.0, start=start, duration_s=30)
        )
        for _ in range(200):
            if progress.report is not None:
                break
            await clock.advance(1.0)
        report = await runner.wait("d1")
    assert report.report is not None
    reasons = {e.key.station_id: e.reason for e in report.report.excluded}
    for station in ("CS0", "CS1", "CS2"):
        assert reasons[station].startswith(f"profile conflict: TxProfile id {PROFILE_ID}")
    assert {s for s, _ in fleet.calls("set")} - {"CS0", "CS1", "CS2"} == {"CS9"}
    assert all(fleet.profiles_at(s, stack_level=50)[0]["id"] == PROFILE_ID for s in ("CS0", "CS1"))
