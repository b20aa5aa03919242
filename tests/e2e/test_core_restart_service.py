"""``kill -9`` of ``vpp-core`` while it holds a frequency service, restarted after 8 s, with
real gateways (the demo's fleet host: station, control law, activation log) and a real core
over websockets and TLS mosquitto (issue 19, durable services).

- resumed (default): the service is known again as soon as the API answers, holds every share
  again, and the stations answer a frequency step under it (a live authority);
- ``resume_after_restart = false``: it is ``interrupted``, no station keeps its LocalFrequency
  profile (the new core's sweep clears each one as the station comes back), and a step moves
  no vehicle.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from tests.e2e.observe import discharging, wait_fleet
from tests.e2e.services import POLL_S, create_service, ev, wait_holding
from v2g_sim.demo_ready import wait_ready
from v2g_sim.demo_stack import DemoStack, StackSettings, vpp_profiles_left

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STATIONS = 6
CAPACITY_MW = 0.03  # 5 kW each
STACK_LEVEL = 50


def _profiles_left(stack: DemoStack) -> dict[str, int]:
    counts = {
        sid: len(vpp_profiles_left(stack.station_state_dir(sid), stack_level=STACK_LEVEL))
        for sid in stack.settings.station_ids
    }
    return {sid: n for sid, n in counts.items() if n}


async def _kill_and_restart(tmp_path: Path, *, resume: bool) -> None:
    settings = StackSettings(stations=STATIONS, per_host=STATIONS, dispatch_control_period_s=1.0)
    async with DemoStack(tmp_path / "state", settings) as stack:
        await stack.step_grid(50.0)
        for sid in settings.station_ids:
            await stack.plug_in(sid, ev(sid))
        async with stack.api() as api:
            await wait_ready(api, settings.station_ids, timeout_s=60)
            service_id = await create_service(api, CAPACITY_MW)
            await wait_holding(api, service_id, CAPACITY_MW)
            await asyncio.sleep(3.0)  # a few capacity samples (each control period, 1 s)
            before = (await api.get(f"/services/{service_id}/report")).json()["capacity"]
        assert before, "sampled before the kill"
        assert len(_profiles_left(stack)) == STATIONS

        stack.kill_core()
        assert await stack.wait_core_exit() == -9
        await asyncio.sleep(8.0)  # the stations keep their profiles (offline 30 s allowed)
        stack.settings = dataclasses.replace(settings, resume_after_restart=resume)
        await stack.start_core()

        async with stack.api() as api:
            first = (await api.get(f"/services/{service_id}")).json()  # known at once
            if resume:
                assert first["status"] in ("sending", "holding"), first
                held = await wait_holding(api, service_id, CAPACITY_MW)
                assert any("resumed after a core restart" in e for e in held["events"]), held
                assert len(_profiles_left(stack)) == STATIONS
                await stack.step_grid(49.8)  # the fleet answers under the resumed service
                await wait_fleet(stack, lambda o: len(discharging(o, below_w=-4000.0)) ==
                                 STATIONS, timeout_s=30)  # fmt: skip
                await stack.step_grid(50.0)
                ended = await api.delete(f"/services/{service_id}")
                assert ended.json()["status"] == "cancelled"
            else:
                assert first["status"] == "interrupted", first
                async with asyncio.timeout(30):  # cleared as the stations come back
                    while True:
                        if not _profiles_left(stack):
                            break
                        await asyncio.sleep(POLL_S)
                await stack.step_grid(49.8)
                await asyncio.sleep(3.0)  # a held profile would have moved them within 1 s
                assert discharging(stack.observe()) == set()
            report = (await api.get(f"/services/{service_id}/report")).json()
        # the report survived the restart: the samples journaled before it are still there
        samples = {r["direction"]: r["samples"] for r in report["capacity"]}
        assert all(samples[r["direction"]] >= r["samples"] - 1 for r in before), (before, report)
        assert _profiles_left(stack) == {}


async def test_a_held_service_is_resumed_after_a_core_kill(tmp_path: Path) -> None:
    await _kill_and_restart(tmp_path, resume=True)


async def test_a_service_not_resumed_is_interrupted_and_no_station_keeps_its_profile(
    tmp_path: Path,
) -> None:
    await _kill_and_restart(tmp_path, resume=False)
