"""``kill -9`` of ``vpp-core`` mid-dispatch, restarted after 8 s (SQLite) and after 45 s
(PostgreSQL), with real gateways and stations (issue 13, item 3).

The stations run the field's timers (comms-loss fail-safe 30 s, ``maxOfflineDuration`` 30 s):
after 8 s they are still discharging under the dispatch's profiles when the core comes back;
after 45 s their fail-safe has stopped them. Either way, after the restart:

- no station discharges under a profile the core does not track (held by a running dispatch)
  for longer than its reconnect plus one control period (and the ramp down to 0 W);
- resumed (default): the dispatch is running as soon as the API answers, its sessions are
  held, it completes, and its report covers the whole window without a gap;
- ``resume_after_restart = false``: it is ``interrupted``, every profile it sent is cleared
  as the stations reconnect (none left in any station's store), and its report stops at the
  crash;
- a new dispatch cannot plan its sessions (they are listed as held by it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.observe import discharging, wait_fleet
from tests.integration.core.fleet.databases import fleet_db_url
from v2g_sim.demo_ready import wait_ready
from v2g_sim.demo_run import post_dispatch
from v2g_sim.demo_stack import DemoStack, StackSettings, vpp_profiles_left
from v2g_sim.scenario import build_scenario

__all__ = ["fleet_db_url"]  # the fixture: SQLite and PostgreSQL
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

STATIONS = 6
# The window outlasts the outage by 45 s: after a restart there is time for the stations to
# reconnect and for several control periods of the resumed dispatch, and no more (the suite
# pays for every second of it).
MIN_WINDOW_S = 50.0
AFTER_OUTAGE_S = 45.0
POLL_S = 0.25
STACK_LEVEL = 50


@dataclasses.dataclass
class UntrackedWatch:
    """Per station: when the restarted core first saw it connected, and how long it then
    discharged with a VPP profile in its store while no running dispatch held its session
    (after a clear, the ramp down to 0 W is the EV's, under no profile)."""

    reconnected: dict[str, float] = dataclasses.field(default_factory=dict)
    untracked_s: dict[str, float] = dataclasses.field(default_factory=dict)
    last: float = dataclasses.field(default_factory=time.monotonic)

    def observe(self, stack: DemoStack, fleet: dict[str, Any], running: set[str]) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        held = {s["station_id"]: s["dispatch_id"] for s in fleet["sessions"]}
        for s in fleet["sessions"]:
            if s["connected"]:
                self.reconnected.setdefault(s["station_id"], now)
        for station in discharging(stack.observe()):
            if station not in self.reconnected or held.get(station) in running:
                continue
            if vpp_profiles_left(stack.station_state_dir(station), stack_level=STACK_LEVEL):
                self.untracked_s[station] = self.untracked_s.get(station, 0.0) + dt


async def _dispatch(api: httpx.AsyncClient, dispatch_id: str) -> dict[str, Any]:
    resp = await api.get(f"/dispatches/{dispatch_id}")
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


async def _report(api: httpx.AsyncClient, dispatch_id: str) -> dict[str, Any]:
    resp = await api.get(f"/dispatches/{dispatch_id}/report")
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


async def _watch_until(
    stack: DemoStack, api: httpx.AsyncClient, dispatch_id: str, watch: UntrackedWatch,
    done: str, *, timeout_s: float,
) -> dict[str, Any]:  # fmt: skip
    """Observe until the dispatch's status is ``done`` (and, when interrupted, nothing
    discharges any more)."""
    async with asyncio.timeout(timeout_s):
        while True:
            d = await _dispatch(api, dispatch_id)
            fleet = (await api.get("/fleet")).json()
            watch.observe(stack, fleet, {dispatch_id} if d["status"] == "running" else set())
            if d["status"] == done and (done != "interrupted" or not discharging(stack.observe())):
                return d
            await asyncio.sleep(POLL_S)


async def _new_dispatch_cannot_claim(api: httpx.AsyncClient, held_by: str) -> set[str]:
    """A new dispatch now: every session the old one holds is excluded as held by it (or
    the new one is refused as overlapping it). Returns the stations held."""
    fleet = (await api.get("/fleet")).json()
    held = {s["station_id"] for s in fleet["sessions"] if s["dispatch_id"] == held_by}
    start = datetime.now().astimezone() + timedelta(seconds=2)
    body = {"power_mw": 0.02, "direction": "discharge", "start": start.isoformat(),
            "duration_s": 20.0}  # fmt: skip
    resp = await api.post("/dispatches", json=body)
    if resp.status_code == 409:
        return held
    assert resp.status_code == 201, resp.text
    plan = resp.json()["plan"]
    excluded = {e["station_id"]: e["reason"] for e in plan["excluded"]}
    not_excluded = {sid for sid in held if excluded.get(sid) != f"held by dispatch {held_by}"}
    assert not not_excluded, plan
    await api.delete(f"/dispatches/{resp.json()['id']}")
    return held


async def _restart_mid_dispatch(
    tmp_path: Path, database_url: str | None, *, outage_s: float, resume: bool
) -> None:
    settings = StackSettings(stations=STATIONS, per_host=STATIONS, database_url=database_url)
    window_s = max(MIN_WINDOW_S, outage_s + AFTER_OUTAGE_S)
    scenario = build_scenario(
        settings.station_ids, speed=1.0, window_scenario_s=window_s, unplug_share=0.0, seed=4
    )
    async with DemoStack(tmp_path / "state", settings) as stack:
        for ev in scenario.evs:
            await stack.plug_in(ev.station_id, ev.spec)
        async with stack.api() as api:
            # every EV's needs in the core first: a plan made without them leaves it out
            await wait_ready(api, settings.station_ids, timeout_s=60)
            created = await post_dispatch(api, scenario)
            dispatch_id = created["id"]
            await wait_fleet(stack, lambda o: len(discharging(o)) >= STATIONS // 2, timeout_s=40)
            async with asyncio.timeout(30):  # mid-dispatch: a few control intervals in
                while True:
                    if len((await _report(api, dispatch_id))["intervals"]) >= 4:
                        break
                    await asyncio.sleep(POLL_S)
            allocations = (await _dispatch(api, dispatch_id))["allocations"]
            setpoints = [a["setpoint_w"] for a in allocations]

        stack.kill_core()
        assert await stack.wait_core_exit() == -9
        killed_at = datetime.now().astimezone()
        await asyncio.sleep(outage_s)  # the fault: the core stays down this long
        stack.settings = dataclasses.replace(settings, resume_after_restart=resume)
        await stack.start_core()

        watch = UntrackedWatch()
        async with stack.api() as api:
            first = await _dispatch(api, dispatch_id)  # known again as soon as the API answers
            assert first["status"] == ("running" if resume else "interrupted"), first
            held = await _new_dispatch_cannot_claim(api, dispatch_id)
            if resume:  # (interrupted: released as each is cleared, which may be done already)
                assert len(held) >= len([w for w in setpoints if w]), (held, setpoints)
            done = "completed" if resume else "interrupted"
            final = await _watch_until(
                stack, api, dispatch_id, watch, done, timeout_s=window_s + 60
            )
            report = await _report(api, dispatch_id)

    # no station discharged under an untracked profile longer than its reconnect + one
    # control period (+ the observation's own lag: polls, the fleet hosts' status files)
    allowed_s = settings.dispatch_control_period_s + 1.0
    print(json.dumps({  # the figures, for `pytest -s`
        "outage_s": outage_s, "resume": resume, "database": database_url or "sqlite",
        "untracked_discharge_max_s": round(max(watch.untracked_s.values(), default=0.0), 2),
        "allowed_s": allowed_s, "report_status": report["status"],
        "energy_error_pct": round(report["energy_error_pct"], 2),
        "intervals": len(report["intervals"]),
    }))  # fmt: skip
    assert set(watch.reconnected) == set(settings.station_ids)
    assert max(watch.untracked_s.values(), default=0.0) <= allowed_s, watch
    intervals = report["intervals"]
    starts = [datetime.fromisoformat(r["t_start"]) for r in intervals]
    ends = [datetime.fromisoformat(r["t_end"]) for r in intervals]
    window_start = datetime.fromisoformat(report["start"])
    assert timedelta(0) <= starts[0] - window_start < timedelta(seconds=1)  # the first tick
    assert starts[1:] == ends[:-1], "no gap in the report"
    if resume:
        assert report["status"] == "completed"
        assert ends[-1] >= window_start + timedelta(seconds=window_s - 0.5)
        assert any("resumed after a core restart" in e for e in final["events"]), final
        assert report["energy_source"] == "meter registers"
    else:
        assert report["status"] == "interrupted"
        assert ends[-1] <= killed_at
        assert not report["uncleared"], report["uncleared"]
    left = {
        sid: vpp_profiles_left(stack.station_state_dir(sid), stack_level=STACK_LEVEL)
        for sid in settings.station_ids
    }
    assert all(not p for p in left.values()), left


# Two of the four back-end x outage pairs: each back end and each outage once (the journal's
# SQL is tested on both back ends in tests/integration/core/dispatch/test_dispatch_journal.py;
# the other two pairs cost 3.5 minutes of the suite's 25 and covered nothing else).
@pytest.mark.parametrize(
    ("fleet_db_url", "outage_s"),
    [("sqlite", 8.0), ("postgresql", 45.0)],
    indirect=["fleet_db_url"],
)
async def test_a_dispatch_resumes_after_a_core_kill(
    tmp_path: Path, fleet_db_url: str, outage_s: float
) -> None:
    await _restart_mid_dispatch(tmp_path, fleet_db_url, outage_s=outage_s, resume=True)


async def test_a_dispatch_not_resumed_is_cleared_and_interrupted(tmp_path: Path) -> None:
    await _restart_mid_dispatch(tmp_path, None, outage_s=8.0, resume=False)
