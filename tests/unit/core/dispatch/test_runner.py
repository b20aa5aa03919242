"""DispatchRunner against a scripted fleet: exact profiles, conflicts, drop-outs, re-plans,
clearing, cancel, resume, legacy and Dynamic profiles, report publication."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.core.dispatch.conftest import ev
from tests.unit.core.dispatch.scripted_fleet import T0, ScriptedFleet, VirtualClock, until
from v2g_sim.module import ModuleSpec
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.progress import DispatchProgress, DispatchStatus
from vpp_core.dispatch.runner import DispatchRunner

START = T0 + timedelta(seconds=10)


def request(target_w: float = -10_000.0, duration_s: float = 300.0, **kw: Any) -> DispatchRequest:
    return DispatchRequest(
        target_w=target_w, start=START, duration_s=duration_s, headroom=1.0, **kw
    )


async def run(
    fleet: ScriptedFleet, clock: VirtualClock, req: DispatchRequest, **cfg: Any
) -> DispatchProgress:
    published: list[tuple[str, bytes]] = []

    async def publish(topic: str, payload: bytes) -> None:
        published.append((topic, payload))

    config = DispatchConfig(**cfg)
    async with DispatchRunner(fleet, fleet, clock, config, publish_report=publish) as runner:
        runner.start("d1", req)
        progress = await runner.wait("d1")
    progress.events.append(f"published={published!r}")
    return progress


async def test_sends_the_exact_vpp_profile_and_clears_it_at_the_end(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    p = await run(fleet, clock, request(-10_000.0))
    station, args = fleet.calls("set")[0]
    assert args == {
        "evse_id": 1,
        "profile": {
            "id": 700_000_001, "stack_level": 50, "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Absolute", "transaction_id": f"tx-{station}-1",
            "valid_from": "2026-01-15T12:00:10Z", "valid_to": "2026-01-15T12:05:10Z",
            "max_offline_duration": 30, "invalid_after_offline_duration": True,
            "charging_schedule": [{
                "id": 700_000_001, "charging_rate_unit": "W", "duration": 300,
                "start_schedule": "2026-01-15T12:00:10Z",
                "charging_schedule_period": [{"start_period": 0, "setpoint": -5000.0,
                    "discharge_limit": -5000.0, "operation_mode": "CentralSetpoint"}],
            }],
        },
    }  # fmt: skip
    clears = fleet.calls("clear")
    assert sorted(s for s, _ in clears) == ["CS1", "CS2"]
    assert all(
        a == {"profile_id": None, "evse_id": 1, "purpose": "TxProfile", "stack_level": 50}
        for _, a in clears
    )
    assert all(fleet.profiles_at(s, stack_level=50) == [] for s in fleet.stations)
    assert p.status is DispatchStatus.COMPLETED
    assert p.report is not None
    assert not p.report.uncleared
    assert abs(p.report.energy_error_pct) < 2.0
    assert "vpp/v1/dispatch/d1/report" in p.events[-1]


async def test_reads_installed_profiles_once_and_excludes_masked_sessions(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("EMS", ev())
    period = {"start_period": 0, "limit": 3_000.0}
    schedule = {"id": 7, "charging_rate_unit": "W", "charging_schedule_period": [period]}
    foreign = {"id": 7, "stack_level": 60, "charging_profile_purpose": "TxProfile", "evse_id": 1,
               "charging_profile_kind": "Absolute", "charging_schedule": [schedule]}  # fmt: skip
    fleet.stations["EMS"].profiles.append(foreign)
    config = DispatchConfig()
    async with DispatchRunner(fleet, fleet, clock, config) as runner:
        runner.start("d1", request(-4_000.0, duration_s=30))
        first = await runner.wait("d1")
        runner.start("d2", DispatchRequest(target_w=-4_000.0, start=clock.now(), duration_s=30))
        await runner.wait("d2")
    assert sorted(s for s, _ in fleet.calls("get")) == ["CS1", "EMS"], "read once per station"
    assert {s for s, _ in fleet.calls("set")} == {"CS1"}
    assert first.initial_plan is not None
    [excluded] = first.initial_plan.excluded
    assert excluded.key.station_id == "EMS"
    assert "stackLevel 60 masks the VPP's stackLevel 50" in excluded.reason
    assert fleet.stations["EMS"].profiles == [foreign], "the site's own profile is left alone"


async def test_rejected_profile_drops_the_session_replans_and_rereads_profiles(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    fleet.stations["CS2"].reject = "TxProfileConflictingStackLevel"
    config = DispatchConfig()
    async with DispatchRunner(fleet, fleet, clock, config) as runner:
        # energy tracking: the 5 s lost to the rejection are caught up within the 60 s window
        runner.start("d1", request(-8_000.0, duration_s=60, tracking="energy"))
        p = await runner.wait("d1")
        fleet.stations["CS2"].reject = None
        runner.start("d2", DispatchRequest(target_w=-8_000.0, start=clock.now(), duration_s=30))
        await runner.wait("d2")
    cs1 = [a["profile"]["charging_schedule"][0]["charging_schedule_period"][0]["setpoint"]
           for s, a in fleet.calls("set") if s == "CS1"]  # fmt: skip
    assert cs1[:2] == [-4_000.0, -8_000.0], "re-planned onto CS1 right after the rejection"
    assert p.sessions[next(k for k in p.sessions if k.station_id == "CS2")].drop_reason == (
        "profile rejected (Rejected: TxProfileConflictingStackLevel)"
    )
    assert [s for s, _ in fleet.calls("get")].count("CS2") == 2, "re-read after Rejected"
    assert p.report is not None
    assert abs(p.report.energy_error_pct) < 3.0


async def test_unplug_mid_window_replans_on_the_remaining_sessions(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    keys = [fleet.add(f"CS{i}", ev()) for i in range(4)]
    fleet.at(START + timedelta(seconds=100), lambda: fleet.unplug(keys[0]))
    p = await run(fleet, clock, request(-20_000.0, duration_s=300))
    setpoints = [a["profile"]["charging_schedule"][0]["charging_schedule_period"][0]["setpoint"]
                 for s, a in fleet.calls("set") if s == "CS1"]  # fmt: skip
    assert setpoints[0] == -5_000.0
    assert any(sp <= -6_600.0 for sp in setpoints[1:]), "others take over the unplugged share"
    rec = p.sessions[keys[0]]
    assert rec.drop_reason == "session ended"
    assert rec.dropped_at is not None
    assert START + timedelta(seconds=100) <= rec.dropped_at <= START + timedelta(seconds=105)
    assert p.report is not None
    assert abs(p.report.energy_error_pct) < 2.0
    assert p.report.attribution.dropout_wh > 0


@pytest.mark.parametrize("ended_reading", [True, False])
async def test_a_session_that_ends_between_meter_samples_counts_to_its_ended_reading(
    clock: VirtualClock, ended_reading: bool
) -> None:
    """Registers sampled every 30 s, the EV leaving 25 s after a sample: its energy is what the
    Ended event's registers say (the simulator's own), not what the last sample said; a
    station that sends no Ended reading leaves the tail uncounted, the only way to tell."""
    fleet = ScriptedFleet(clock, meter_interval_s=30.0)
    keys = [fleet.add(f"CS{i}", ev()) for i in range(4)]
    gone = keys[0]
    start_export = fleet.vehicles[gone].module.energy_injected_wh
    fleet.at(
        START + timedelta(seconds=115), lambda: fleet.unplug(gone, ended_reading=ended_reading)
    )
    p = await run(fleet, clock, request(-20_000.0, duration_s=300))
    assert p.report is not None
    truth_wh = -(fleet.vehicles[gone].module.energy_injected_wh - start_export)
    [session] = [s for s in p.report.sessions if s.key == gone]
    assert session.ended_at is not None
    assert p.report.ended_before_clear == (gone,)
    assert p.report.uncleared == ()
    if ended_reading:
        assert session.metered_energy_wh == pytest.approx(truth_wh, rel=0.005)
        assert session.ended_at == START + timedelta(seconds=115)
    else:  # the last sample was taken ~25 s before the end: about a fifth of it is missing
        assert session.metered_energy_wh > 0.9 * truth_wh


async def test_timeouts_are_drop_outs_and_uncleared_profiles_are_reported(
    clock: VirtualClock,
) -> None:
    fleet = ScriptedFleet(clock)
    fleet.add("CS1", ev())
    fleet.add("CS2", ev())
    original = fleet.set_charging_profile

    async def flaky(station_id: str, evse_id: int, profile: Any) -> Any:
        result = await original(station_id, evse_id, profile)
        if station_id == "CS2":
            fleet.stations["CS2"].fail = TimeoutError("no answer")  # landed, but no reply
            raise TimeoutError("no answer")
        return result

    fleet.set_charging_profile = flaky  # type: ignore[method-assign]
    p = await run(fleet, clock, request(-8_000.0, duration_s=60), clear_attempts=2)
    cs2 = next(k for k in p.sessions if k.station_id == "CS2")
    assert p.sessions[cs2].drop_reason == "command failed: TimeoutError('no answer')"
    # its setpoint may be in force: cleared at each tick while that fails, twice at the end
    clears = [s for s, _ in fleet.calls("clear")].count("CS2")
    assert clears >= 2 + 60 // 5 - 1, "clear retried"
    assert p.sessions[cs2].stranded_w == -4_000.0, "CS1 was planned around it"
    assert p.report is not None
    assert p.report.uncleared == (cs2,)
    assert any("expires at 2026-01-15T12:01:10" in e for e in p.events)
    assert fleet.profiles_at("CS1", stack_level=50) == []


async def test_resume_charging_ends_with_a_positive_schedule(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    await run(fleet, clock, request(-5_000.0, duration_s=30), resume_charging=True)
    assert fleet.calls("clear") == []
    last = fleet.calls("set")[-1][1]["profile"]
    period = last["charging_schedule"][0]["charging_schedule_period"][0]
    assert period == {"start_period": 0, "limit": 11_000.0, "operation_mode": "ChargingOnly"}
    assert "valid_to" not in last
    assert fleet.applied_setpoint_w(next(iter(fleet.vehicles))) == 11_000.0


async def test_legacy_station_gets_a_negative_limit(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("OLD", ev())
    await run(
        fleet, clock, request(-5_000.0, duration_s=30), legacy_negative_limit_stations=["OLD"]
    )
    period = fleet.calls("set")[0][1]["profile"]["charging_schedule"][0]["charging_schedule_period"]
    assert period == [{"start_period": 0, "limit": -5_000.0}]


async def test_dynamic_profiles_are_updated_with_update_dynamic_schedule(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    keys = [fleet.add(f"CS{i}", ev()) for i in range(2)]
    fleet.at(START + timedelta(seconds=40), lambda: fleet.unplug(keys[0]))
    await run(fleet, clock, request(-10_000.0, duration_s=120), dynamic_profiles=True)
    sets = fleet.calls("set")
    assert [s for s, _ in sets] == ["CS0", "CS1"] or sorted(s for s, _ in sets) == ["CS0", "CS1"]
    assert all(a["profile"]["charging_profile_kind"] == "Dynamic" for _, a in sets)
    updates = [a for s, a in fleet.calls("update") if s == "CS1"]
    assert updates, "setpoint changes go out as UpdateDynamicSchedule"
    assert updates[0]["profile_id"] == 700_000_001
    assert updates[0]["update"]["setpoint"] < -5_000.0


async def test_cancel_mid_window_stops_and_clears() -> None:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
        progress = runner.start("d1", request(-5_000.0, duration_s=600))
        await clock.advance(10)
        await until(lambda: fleet.profiles_at("CS1", stack_level=50))
        for _ in range(4):
            await clock.advance(5)
        assert progress.status.value == "running"
        runner.cancel("d1")
        await runner.wait("d1")
    assert progress.status.value == "cancelled"
    assert fleet.profiles_at("CS1", stack_level=50) == []
    assert progress.report is not None
    assert progress.report.status == "cancelled"


async def test_leaving_the_runner_clears_running_dispatches() -> None:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
        progress = runner.start("d1", request(-5_000.0, duration_s=600))
        await clock.advance(15)
        await until(lambda: fleet.profiles_at("CS1", stack_level=50))
    assert progress.done.is_set()
    assert fleet.profiles_at("CS1", stack_level=50) == []


async def test_under_delivering_vehicle_is_planned_at_what_it_does(clock: VirtualClock) -> None:
    fleet = ScriptedFleet(clock)
    weak = fleet.add("WEAK", ev())  # declares 10 kW, its module only does 2 kW
    fleet.vehicles[weak].module.spec = ModuleSpec(rated_discharge_w=2_000.0, lag_tau_s=2.0)
    for i in range(3):
        fleet.add(f"CS{i}", ev())
    p = await run(fleet, clock, request(-16_000.0, duration_s=300))
    assert p.sessions[weak].lagging
    assert any("under-delivery WEAK/1" in e for e in p.events)
    assert p.report is not None
    assert abs(p.report.energy_error_pct) < 2.0
    assert p.report.attribution.lag_wh > 0


@pytest.mark.parametrize("direction_w", [-6_000.0, 6_000.0])
async def test_both_directions_track_energy(
    fleet: ScriptedFleet, clock: VirtualClock, direction_w: float
) -> None:
    for i in range(3):
        fleet.add(f"CS{i}", ev(soc_pct=60.0))
    p = await run(fleet, clock, request(direction_w, duration_s=300))
    assert p.report is not None
    assert abs(p.report.energy_error_pct) < 2.0
    assert p.report.delivered_energy_wh * direction_w > 0


async def test_station_offline_drops_out_then_rejoins_with_a_full_profile(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    keys = [fleet.add(f"CS{i}", ev()) for i in range(3)]

    def offline(online: bool) -> None:
        fleet.stations["CS1"].online = online

    fleet.at(START + timedelta(seconds=60), lambda: offline(False))
    fleet.at(START + timedelta(seconds=120), lambda: offline(True))
    p = await run(fleet, clock, request(-15_000.0, duration_s=300))
    rec = p.sessions[keys[1]]
    assert rec.drop_reason is None
    assert rec.rejoins == 1
    assert rec.notes[0].endswith("rejoined after: not connected (station offline or EV unplugged)")
    cs1_sets = [a for s, a in fleet.calls("set") if s == "CS1"]
    assert len(cs1_sets) >= 2, "the full profile is sent again after the rejoin"
    assert p.report is not None
    assert abs(p.report.energy_error_pct) < 2.0
    assert fleet.profiles_at("CS1", stack_level=50) == []


async def test_a_failing_report_publisher_does_not_lose_the_report(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())

    async def broken(topic: str, payload: bytes) -> None:
        raise ConnectionError("broker down")

    async with DispatchRunner(
        fleet, fleet, clock, DispatchConfig(), publish_report=broken
    ) as runner:
        runner.start("d1", request(-5_000.0, duration_s=30))
        p = await runner.wait("d1")
    assert p.report is not None
    assert p.status is DispatchStatus.COMPLETED
    assert any("report not published on vpp/v1/dispatch/d1/report" in e for e in p.events)
    assert fleet.profiles_at("CS1", stack_level=50) == []


async def test_a_failing_fleet_view_fails_the_dispatch_but_still_clears(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    real_sessions = fleet.sessions
    calls = 0

    def flaky() -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError("fleet database gone")
        return real_sessions()

    fleet.sessions = flaky  # type: ignore[method-assign]
    p = await run(fleet, clock, request(-5_000.0, duration_s=60))
    assert p.status is DispatchStatus.FAILED
    assert any("fleet database gone" in e for e in p.events)
    assert fleet.profiles_at("CS1", stack_level=50) == [], "cleared despite the failure"


async def test_cancelling_the_owner_task_still_clears_the_fleet() -> None:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    fleet.add("CS1", ev())

    async def owner() -> None:
        async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
            runner.start("d1", request(-5_000.0, duration_s=600))
            await asyncio.Event().wait()  # e.g. the core's main task, until shutdown

    task = asyncio.create_task(owner(), name="core-main")
    await clock.advance(10)
    await until(lambda: fleet.profiles_at("CS1", stack_level=50))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fleet.profiles_at("CS1", stack_level=50) == []


async def test_meter_samples_lagging_real_time_do_not_bias_the_closed_loop(
    clock: VirtualClock,
) -> None:
    """Registers arrive every 30 s while the target runs up to now: read naively that looks
    like a steady shortfall and the loop over-commits (~lag x power / horizon)."""
    fleet = ScriptedFleet(clock, meter_interval_s=30.0)
    for i in range(4):
        fleet.add(f"CS{i}", ev(soc_pct=70.0))
    p = await run(fleet, clock, request(-12_000.0, duration_s=600), catch_up_horizon_s=30.0)
    assert p.report is not None
    # measured: -0.48 % with the correction, +2.1 % without it
    assert abs(p.report.energy_error_pct) < 1.0, p.report.energy_error_pct


async def test_status_turns_final_only_after_the_clears_are_answered(
    fleet: ScriptedFleet, clock: VirtualClock
) -> None:
    fleet.add("CS1", ev())
    held = fleet.hold("clear_charging_profile")
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
        runner.start("d1", request(duration_s=60))
        await asyncio.wait_for(held.entered.wait(), timeout=5)
        # the window is over and the clear is in flight: not yet "completed"
        assert runner.progress("d1").status is DispatchStatus.RUNNING
        held.release()
        done = await runner.wait("d1")
    assert done.status is DispatchStatus.COMPLETED
    assert done.report is not None
    assert not done.report.uncleared


async def test_the_report_counts_energy_up_to_the_end_of_the_window(clock: VirtualClock) -> None:
    """The last sample inside the window is up to a sampling interval old; the report waits
    for a sample taken after the end instead of under-reporting the tail."""
    fleet = ScriptedFleet(clock, meter_interval_s=20.0)  # last in-window sample: 10 s early
    for i in range(2):
        fleet.add(f"CS{i}", ev(soc_pct=70.0))
    p = await run(fleet, clock, request(-8_000.0, duration_s=290))
    assert p.report is not None
    # measured: +0.65 % (the ramp-down after the clear) with the final sample, -3.4 % without
    assert abs(p.report.energy_error_pct) < 1.5, p.report.energy_error_pct
