"""The core dies mid-dispatch (``kill -9`` of vpp-core): every gateway stops discharging by
its own fail-safe, and after the core restarts the fleet is re-synchronised.

Timers are shortened for CI and say so: the control loop's comms-loss fail-safe at 8 s
(30 s in the field) and the profiles' ``maxOfflineDuration`` at 4 s (30 s by default)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.observe import discharging, failsafe_events, wait_fleet
from v2g_sim.demo_ready import wait_ready
from v2g_sim.demo_run import post_dispatch
from v2g_sim.demo_stack import DemoStack, StackSettings
from v2g_sim.scenario import build_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STATIONS = 20
COMMS_LOSS_TIMEOUT_S = 8.0
MAX_OFFLINE_DURATION_S = 4
RAMP_W_PER_S = 2000.0  # the control section's default
MAX_DISCHARGE_W = 11_000.0


async def test_core_killed_mid_dispatch_then_restarted(tmp_path: Path) -> None:
    settings = StackSettings(
        stations=STATIONS,
        per_host=10,
        comms_loss_timeout_s=COMMS_LOSS_TIMEOUT_S,
        max_offline_duration_s=MAX_OFFLINE_DURATION_S,
        # this test is about the stations' own fail-safe: the restarted core closes the
        # dispatch as interrupted and clears it (resuming it: test_core_restart_dispatch.py)
        resume_after_restart=False,
    )
    # a long window (10 scenario minutes at 2x = 300 s): the core dies well inside it
    scenario = build_scenario(
        settings.station_ids, speed=2.0, window_scenario_s=600.0, unplug_share=0.0, seed=4
    )
    async with DemoStack(tmp_path / "state", settings) as stack:
        for ev in scenario.evs:
            await stack.plug_in(ev.station_id, ev.spec)
        async with stack.api() as api:
            # every EV's needs in the core before the plan (a plan made without them left
            # the late reporters out: "8 of 17 sessions")
            await wait_ready(api, settings.station_ids, timeout_s=60)
            created = await post_dispatch(api, scenario)
        plan = created["plan"]
        assert plan["sessions_used"] >= STATIONS // 2, created
        # no discharge-capable EV left out for want of its needs ("no discharge capability
        # reported", "no requested energy transfer mode reported: charge-only")
        capable = {ev.station_id for ev in scenario.evs if ev.spec.bidirectional}
        unknown = {
            e["station_id"]
            for e in plan["excluded"]
            if "reported" in e["reason"] or "charge-only" in e["reason"]
        }
        assert not unknown & capable, plan["excluded"]
        before = await wait_fleet(
            stack, lambda o: len(discharging(o)) >= STATIONS // 2, timeout_s=40
        )
        assert failsafe_events(before) == {}, "no fail-safe while the core is up"

        stack.kill_core()
        killed_at = time.monotonic()
        assert await stack.wait_core_exit() == -9
        # every gateway stops discharging on its own: profile offline limit, then the
        # comms-loss fail-safe opens the contactor (ramp from full power included)
        ramp_s = MAX_DISCHARGE_W / RAMP_W_PER_S
        stopped = await wait_fleet(
            stack,
            lambda o: not discharging(o) and o.fail_safe == o.stations,
            timeout_s=COMMS_LOSS_TIMEOUT_S + ramp_s + 5,
        )
        # the timer runs from the last CSMS exchange, at most one probe interval before the kill
        earliest_s = COMMS_LOSS_TIMEOUT_S - settings.contact_probe_interval_s - 0.5
        assert time.monotonic() - killed_at >= earliest_s, "fail-safe too early"
        assert all(not r["contactor_closed"] for r in stopped.gateways.values())
        assert set(failsafe_events(stopped)) == set(settings.station_ids)

        await stack.start_core()
        # re-synchronised: every station reconnects, sessions and SoC are back in the fleet
        async with stack.api() as api:
            sessions = await wait_ready(api, settings.station_ids, timeout_s=60, needs=False)
        assert {s["station_id"] for s in sessions} == set(settings.station_ids)
        live_soc = {sid: r["soc_pct"] for sid, r in stack.observe().gateways.items()}
        for s in sessions:
            assert s["soc_pct"] == pytest.approx(live_soc[s["station_id"]], abs=2.0)
        # the fail-safe clears with contact back, and no stale discharge comes back
        cleared = await wait_fleet(stack, lambda o: o.fail_safe == 0, timeout_s=30)
        assert not discharging(cleared)
        quiet_until = time.monotonic() + 10.0
        while time.monotonic() < quiet_until:
            assert not discharging(stack.observe()), "stale discharge after the restart"
            await asyncio.sleep(0.5)
