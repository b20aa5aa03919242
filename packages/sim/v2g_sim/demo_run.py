"""The demo's scenario run against a started :class:`~v2g_sim.demo_stack.DemoStack`:
plug the EVs in, post the dispatch through the HTTP API, unplug the leavers mid-window, follow
the dispatch live, then save its report (JSON, CSV, PNG) from the API's report endpoints.
``vpp-demo`` and ``tests/e2e`` both run it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from v2g_sim.demo_ready import wait_ready
from v2g_sim.demo_stack import DemoStack, FleetObservation
from v2g_sim.demo_view import DemoFrame
from v2g_sim.scenario import DemoScenario

__all__ = ["DemoResult", "DispatchFailed", "Interrupted", "post_dispatch", "run_scenario"]

T = TypeVar("T")
TERMINAL = {"completed", "cancelled", "failed"}
START_LEAD_S = 5.0
POLL_S = 0.5
#: How long the plugged EVs get to report connection, SoC and charging needs to the core.
READY_TIMEOUT_S = 90.0
#: The core's clear attempts (3) times its command timeout (10 s), plus slack.
CLEAR_RESULTS_TIMEOUT_S = 40.0


class DispatchFailed(RuntimeError):
    """The API refused the dispatch or the run could not go on."""


class Interrupted(Exception):
    """Stopped (Ctrl-C) before a dispatch existed: nothing to cancel."""


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted
    return task.result()


@dataclass(slots=True)
class DemoResult:
    dispatch_id: str
    status: str
    created: dict[str, Any]
    report: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)
    unplugged: list[str] = field(default_factory=list)
    #: fail-safe entries per station seen while the core was up (event counts)
    fail_safe_events: dict[str, int] = field(default_factory=dict)


async def post_dispatch(api: httpx.AsyncClient, scenario: DemoScenario) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(seconds=START_LEAD_S)
    body = {
        "power_mw": scenario.power_mw,
        "direction": "discharge",
        "start": start.isoformat(),
        "duration_s": scenario.window_s,
    }
    resp = await api.post("/dispatches", json=body)
    if resp.status_code != 201:
        raise DispatchFailed(f"POST /dispatches answered {resp.status_code}: {resp.text}")
    created: dict[str, Any] = resp.json()
    return created


async def run_scenario(
    stack: DemoStack,
    scenario: DemoScenario,
    *,
    out_dir: Path,
    show: Callable[[DemoFrame], None],
    say: Callable[[str], None],
    stop: asyncio.Event,
) -> DemoResult:
    """Plug in, dispatch, follow, report. ``stop`` (Ctrl-C) cancels the dispatch with
    DELETE, which clears every profile, and returns what there is."""
    t0 = time.monotonic()
    say(f"plugging in {len(scenario.evs)} EVs")
    await _unless_stopped(_plug_in_all(stack, scenario), stop)
    async with stack.api() as api:
        plugged = [ev.station_id for ev in scenario.evs]
        await _unless_stopped(wait_ready(api, plugged, timeout_s=READY_TIMEOUT_S), stop)
        say(
            f"all {len(plugged)} EVs reported SoC and charging needs to the core after "
            f"{time.monotonic() - t0:.1f} s"
        )
        created = await post_dispatch(api, scenario)
        result = DemoResult(created["id"], created["status"], created)
        say(_plan_line(created))
        follower = _Follower(stack, api, scenario, result, show=show, say=say, t0=t0)
        await follower.follow(stop)
        if stop.is_set() and result.status not in TERMINAL:
            say(f"interrupted: cancelling dispatch {result.dispatch_id} (clears its profiles)")
            resp = await api.delete(f"/dispatches/{result.dispatch_id}")
            result.status = resp.json().get("status", "cancelled") if resp.is_success else "?"
        await _save_reports(api, result, out_dir, speed=scenario.speed)
    return result


async def _plug_in_all(stack: DemoStack, scenario: DemoScenario) -> None:
    for ev in scenario.evs:
        await stack.plug_in(ev.station_id, ev.spec)


def _plan_line(created: dict[str, Any]) -> str:
    plan = created["plan"]
    return (
        f"dispatch {created['id']}: requested {plan['requested_mw']:.3f} MW, committed "
        f"{plan['committed_mw']:.3f} MW on {plan['sessions_used']}/{plan['sessions_eligible']} "
        f"sessions ({len(plan['excluded'])} excluded), ±"
        f"{plan['expected_tracking_uncertainty_mw']:.3f} MW expected; {plan['message']}"
    )


class _Follower:
    """Polls the dispatch and the fleet hosts, unplugs the leavers, feeds the view."""

    def __init__(
        self,
        stack: DemoStack,
        api: httpx.AsyncClient,
        scenario: DemoScenario,
        result: DemoResult,
        *,
        show: Callable[[DemoFrame], None],
        say: Callable[[str], None],
        t0: float,
    ) -> None:
        self.stack, self.api, self.scenario, self.result = stack, api, scenario, result
        self.show, self.say, self.t0 = show, say, t0
        self.pending = list(scenario.unplugs)
        self.notes: list[str] = []
        self.events_seen = 0
        self.start = datetime.fromisoformat(result.created["request"]["start"])
        self.end = datetime.fromisoformat(result.created["request"]["end"])

    async def follow(self, stop: asyncio.Event) -> None:
        deadline = self.end + timedelta(seconds=60)
        while not stop.is_set():
            now = datetime.now(UTC)
            dispatch = await self._get_dispatch()
            self.result.status = dispatch["status"]
            for event in dispatch["events"][self.events_seen :]:
                self._note(f"core: {event}")
            self.events_seen = len(dispatch["events"])
            await self._unplug_due(now)
            self.show(self._frame(now, dispatch, self.stack.observe()))
            if self.result.status in TERMINAL:
                return
            if now > deadline:
                raise DispatchFailed(f"dispatch still {self.result.status} a minute after its end")
            await _wait_or_stop(stop, POLL_S)

    async def _get_dispatch(self) -> dict[str, Any]:
        resp = await self.api.get(f"/dispatches/{self.result.dispatch_id}")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def _unplug_due(self, now: datetime) -> None:
        into_window_s = (now - self.start).total_seconds()
        while self.pending and self.pending[0].at_s <= into_window_s:
            leaver = self.pending.pop(0)
            await self.stack.plug_out(leaver.station_id)
            self.result.unplugged.append(leaver.station_id)
            self._note(f"{leaver.station_id}: vehicle unplugged at {into_window_s:.0f} s")

    def _note(self, text: str) -> None:
        self.notes.append(text)
        self.say(text)

    def _frame(self, now: datetime, d: dict[str, Any], fleet: FleetObservation) -> DemoFrame:
        in_window = self.start <= now < self.end
        window_s = (self.end - self.start).total_seconds()
        done_s = min(max(0.0, (now - self.start).total_seconds()), window_s)
        requested_kw = d["request"]["power_mw"] * 1000.0
        dropped = sum(1 for a in d["allocations"] if a["dropped_at"] is not None)
        return DemoFrame(
            phase=_phase(now, self.start, self.end),
            elapsed_s=time.monotonic() - self.t0,
            window_s=window_s,
            window_elapsed_s=done_s if now >= self.start else None,
            target_kw=requested_kw if in_window else 0.0,
            dispatch_kw=d["live_power_mw"] * 1000.0,
            fleet_net_kw=fleet.net_power_w / 1000.0,
            delivered_kwh=d["delivered_energy_mwh"] * 1000.0,
            target_kwh_so_far=requested_kw * done_s / 3600.0,
            sessions=fleet.sessions,
            stations=fleet.stations,
            discharging=fleet.discharging,
            dropouts=dropped,
            fail_safe=fleet.fail_safe,
            status=d["status"],
            notes=tuple(self.notes),
        )


def _phase(now: datetime, start: datetime, end: datetime) -> str:
    if now < start:
        return "waiting for the window"
    return "dispatch window" if now < end else "closing (clearing profiles, report)"


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


async def _await_clear_results(api: httpx.AsyncClient, base: str) -> None:
    """The status turns terminal before the clear answers are in (the report lists every
    session still waiting for one as ``uncleared``): wait for them, at most as long as the
    core's clear attempts take."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLEAR_RESULTS_TIMEOUT_S
    while True:
        resp = await api.get(base)
        resp.raise_for_status()
        if not resp.json()["uncleared"] or loop.time() > deadline:
            return
        await asyncio.sleep(POLL_S)


async def _save_reports(
    api: httpx.AsyncClient, result: DemoResult, out_dir: Path, *, speed: float
) -> None:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    base = f"/dispatches/{result.dispatch_id}/report"
    await _await_clear_results(api, base)
    for fmt, name in (("json", "report.json"), ("csv", "report.csv"), ("png", "report.png")):
        # the PNG says the time was compressed (its minutes and energies are the run's)
        resp = await api.get(base, params={"format": fmt, "speed": max(speed, 1.0)})
        resp.raise_for_status()
        path = out_dir / name
        await asyncio.to_thread(path.write_bytes, resp.content)
        result.files.append(path)
    result.report = json.loads(result.files[0].read_bytes())
    plan = out_dir / "dispatch.json"
    await asyncio.to_thread(plan.write_text, json.dumps(result.created, indent=2))
    result.files.append(plan)
