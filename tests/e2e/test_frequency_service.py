"""Issue 19's Must show, end to end: the core holds a 0.1 MW FCR service on 20 gateways, the
simulator steps the grid frequency, the fleet responds in the right direction and size, each
activation file holds 100 ms samples from 10 s before the step, and the core's report shows the
activation.

All real but the power electronics and the vehicles: ``vpp-core run`` (a child process) over
OCPP 2.1 websockets with mutual TLS, TLS mosquitto with the production ACL, and the demo's
fleet host running the real gateway code for 20 stations (the station, the control loop with
the real control law, the uplink, the activation log). One fleet host, not 20 daemons: the
shared 2-core machine does not hold 20 daemons plus a core in a test's time (DemoStack says
so). The activation log ends 5 s after the last excursion here (15 min in the field) so the
gateways' ``FREQUENCY_ACTIVATION`` events reach the core within the test.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.observe import wait_fleet
from tests.e2e.services import POLL_S, create_service, ev, wait_holding
from v2g_sim.demo_ready import wait_ready
from v2g_sim.demo_stack import DemoStack, StackSettings, vpp_profiles_left

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STATIONS = 20
CAPACITY_MW = 0.1
STEP_HZ = 49.8  # FCR full activation (200 mHz): every share delivered in full, discharging
STACK_LEVEL = 50
AFTER_S = 5.0


async def _reported(api: httpx.AsyncClient, service_id: str, timeout_s: float) -> dict[str, Any]:
    """The report once one activation lists every station as reported."""
    async with asyncio.timeout(timeout_s):
        while True:
            report: dict[str, Any] = (await api.get(f"/services/{service_id}/report")).json()
            acts = report["activations"]
            if acts and len(acts[0]["stations_reported"]) == STATIONS:
                return report
            await asyncio.sleep(POLL_S)


def _activation_rows(stack: DemoStack, station_id: str) -> list[dict[str, float]]:
    (path,) = (stack.station_state_dir(station_id) / "activations").glob("activation-*.csv")
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


async def test_a_fleet_holding_fcr_answers_a_frequency_step_and_the_core_reports_it(
    tmp_path: Path,
) -> None:
    settings = StackSettings(
        stations=STATIONS, per_host=STATIONS, frequency_log_after_s=AFTER_S,
        dispatch_control_period_s=1.0, control_period_s=0.05,
    )  # fmt: skip
    async with DemoStack(tmp_path / "state", settings) as stack:
        await stack.step_grid(50.0)  # a steady 50 Hz: no activation before the step
        for sid in settings.station_ids:
            await stack.plug_in(sid, ev(sid))
        async with stack.api() as api:
            await wait_ready(api, settings.station_ids, timeout_s=60)
            service_id = await create_service(api, CAPACITY_MW)
            service = await wait_holding(api, service_id, CAPACITY_MW)
            shares = {s["station_id"]: s["discharge_w"] for s in service["shares"]}
            assert set(shares) == set(settings.station_ids)
            await asyncio.sleep(10.5)  # the gateways' ring buffers fill at 50 Hz

            await stack.step_grid(STEP_HZ)
            # the fleet answers: every station discharges its share (within 5 %)
            full = await wait_fleet(
                stack,
                lambda o: all(
                    o.gateways[s].get("power_w", 0.0) <= -0.95 * w for s, w in shares.items()
                ),
                timeout_s=30,
            )
            net_kw = full.net_power_w / 1e3
            assert -CAPACITY_MW * 1e3 * 1.05 <= net_kw <= -CAPACITY_MW * 1e3 * 0.95, net_kw
            await asyncio.sleep(5.0)  # held at full activation
            await stack.step_grid(50.0)
            report = await _reported(api, service_id, timeout_s=AFTER_S + 30)
            ended = await api.delete(f"/services/{service_id}")
            assert ended.json()["status"] == "cancelled"

        files = {sid: _activation_rows(stack, sid) for sid in settings.station_ids}
        left = {
            sid: vpp_profiles_left(stack.station_state_dir(sid), stack_level=STACK_LEVEL)
            for sid in settings.station_ids
        }

    activation = report["activations"][0]
    fleet = activation["fleet"]
    print(json.dumps({"net_kw_at_full": round(net_kw, 2), "fleet": fleet,
                      "requirements": activation["requirements"],
                      "capacity": report["capacity"]}))  # fmt: skip
    # the activation files: 100 ms samples from 10 s before the step
    for sid, rows in files.items():
        t = [r["t_s"] for r in rows]
        assert t[0] <= -9.85, (sid, t[0])  # at least the 10 s before (100 samples, or more s
        # when loop periods were late on this loaded machine)
        gaps = sorted(b - a for a, b in itertools.pairwise(t))
        # 100 ms samples of the control loop's snapshot (a 20 Hz loop, as the sub-second
        # products want: at 10 Hz the sampler beats against the loop and skips a period now
        # and then, as a snapshot not renewed since the last sample is not a new sample)
        assert gaps[len(gaps) // 2] == pytest.approx(0.1, abs=0.01), (sid, gaps)
        assert gaps[0] > 0.0, sid  # no sample written twice
        assert sum(g > 0.16 for g in gaps) <= 0.05 * len(gaps), (sid, gaps[-10:])  # 1.5 periods
        assert sum(-10.0 <= x < 0 for x in t) >= 85, sid  # the 10 s before, at 100 ms
        assert min(r["freq_hz"] for r in rows) == pytest.approx(STEP_HZ, abs=0.005)
        assert all(r["freq_hz"] == pytest.approx(50.0, abs=0.005) for r in rows if r["t_s"] < 0)
    # the core's report shows the activation, judged against the curve
    assert (activation["direction"], activation["delta_f_hz"]) == ("discharge", -0.2)
    assert activation["stations_missing"] == []
    assert fleet["reference_w"] == pytest.approx(-CAPACITY_MW * 1e6, rel=0.01)
    assert fleet["delay_s"] is not None, fleet
    assert fleet["delay_s"] <= 1.0
    assert {r["figure"]: r["met"] for r in activation["requirements"]} == {
        "t50_s": True, "t100_s": True,
    }  # fmt: skip
    # energy over the series (1 s apart after 5 s: the step back to 50 Hz falls between two
    # points, which moves either energy by up to half a second of the full response)
    assert 0.9 <= fleet["energy_ratio"] <= 1.1
    capacity = {r["direction"]: r for r in report["capacity"]}
    assert capacity["discharge"]["held_min_mw"] == pytest.approx(CAPACITY_MW)
    assert capacity["discharge"]["covered"] is True
    assert all(not p for p in left.values()), left  # DELETE cleared every profile
