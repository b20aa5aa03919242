"""The demo's scenario at small scale: 20 chargers running our gateway code (station,
control law, uplink) against ``vpp-core run`` over mutual TLS, a 15-minute discharge
compressed 20x (45 s window), vehicles unplugging mid-window. Asserts on the report the API
serves and on the gateways themselves."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from v2g_sim.demo_run import run_scenario
from v2g_sim.demo_stack import DemoStack, StackSettings, vpp_profiles_left
from v2g_sim.scenario import build_scenario
from vpp_core.dispatch.config import DispatchConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STATIONS = 20
SPEED = 20.0
ENERGY_TOLERANCE_PCT = 2.0
TRIP_CODES = {
    "GROUND_FAULT",
    "OVER_TEMP",
    "DC_OVER_VOLTAGE",
    "AC_OVER_VOLTAGE",
    "AC_UNDER_VOLTAGE",
    "MODULE_FAULT",
    "GRID_FREQ_OUT_OF_RANGE",
    "SENSOR_MISMATCH",
    "SENSOR_FAULT",
    "MODULE_COMM_LOST",
    "COMMS_LOSS_FAILSAFE",
    "LEASE_EXPIRED",
}


async def test_small_fleet_dispatch_report(tmp_path: Path) -> None:
    settings = StackSettings(stations=STATIONS, per_host=10, log_level="WARNING")
    scenario = build_scenario(settings.station_ids, speed=SPEED, unplug_share=0.15, seed=3)
    lines: list[str] = []
    async with DemoStack(tmp_path / "state", settings) as stack:
        result = await run_scenario(
            stack,
            scenario,
            out_dir=tmp_path / "out",
            show=lambda frame: None,
            say=lines.append,
            stop=asyncio.Event(),
        )
        gateways = stack.observe().gateways  # before the stack stops (stopping ramps down)
        async with stack.api() as api:
            final = (await api.get(f"/dispatches/{result.dispatch_id}")).json()
        left = {
            sid: vpp_profiles_left(
                stack.station_state_dir(sid), stack_level=DispatchConfig().stack_level
            )
            for sid in settings.station_ids
        }

    report = result.report
    assert report is not None
    assert result.status == "completed", lines
    assert {p.name for p in result.files} >= {"report.json", "report.csv", "report.png"}
    assert (tmp_path / "out" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # power tracking (the default): the stations are never commanded above the target, so
    # what the ramp-in costs is not caught up; the vehicles ramp in real time while the window
    # is compressed 20x, which makes that cost 20x its share of a real window. The energy
    # (what actually flowed, metered) is within tolerance net of the ramp-in's shortfall.
    assert report["energy_source"] == "meter registers"
    assert report["tracking_mode"] == "power"
    assert report["tracking"]["max_commanded_overshoot_pct"] == 0.0
    ramp_pct = _ramp_in_shortfall_pct(report)
    assert abs(report["energy_error_pct"] - ramp_pct) <= ENERGY_TOLERANCE_PCT, (ramp_pct, lines)
    # every profile cleared: the core says so, and the stations' own stores agree
    assert report["uncleared"] == []
    assert left == {sid: [] for sid in settings.station_ids}
    # the vehicles that left were dropped from the plan and the rest re-planned to cover them
    unplugged = set(result.unplugged)
    dropped = {s["key"]["station_id"] for s in report["sessions"] if s["drop_reason"]}
    assert unplugged, "the scenario unplugs vehicles mid-window"
    assert dropped & unplugged, (dropped, unplugged, lines)
    assert dropped <= unplugged, (dropped, unplugged)
    intervals = report["intervals"]
    after_drop = [nxt for cur, nxt in itertools.pairwise(intervals) if cur["dropout_w"] != 0]
    assert after_drop, "the report shows the drop-outs"
    for row in after_drop:  # the remaining vehicles were re-planned to cover the target
        assert abs(row["planned_w"]) >= 0.95 * abs(row["target_w"]), row
    # the report went out on MQTT too (the runner records a failed publish as an event)
    assert not [e for e in final["events"] if "not published" in e], final["events"]
    # no fail-safe or trip while every link was up
    trips = {
        sid: {c: n for c, n in row["events"].items() if c in TRIP_CODES}
        for sid, row in gateways.items()
    }
    assert {sid: t for sid, t in trips.items() if t} == {}


def _ramp_in_shortfall_pct(report: dict[str, Any]) -> float:
    """The energy error of the intervals before ``ramp_in_s`` (sampled power), % of target."""
    start = datetime.fromisoformat(report["start"])
    ramp_in_s = report["tracking"]["ramp_in_s"]
    error_wh = 0.0
    for row in report["intervals"]:
        t0, t1 = datetime.fromisoformat(row["t_start"]), datetime.fromisoformat(row["t_end"])
        if (t0 - start).total_seconds() < ramp_in_s:
            error_wh += (row["delivered_w"] - row["target_w"]) * (t1 - t0).total_seconds() / 3600
    sign = -1.0 if report["direction"] == "discharge" else 1.0  # as energy_error_pct
    return sign * error_wh / abs(report["target_energy_wh"]) * 100.0
