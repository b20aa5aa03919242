"""Dispatch fan-out: API call -> every station's SetChargingProfile answered, and re-plan after
a drop-out, for 1k and 10k stations (target < 2 s at 10k).

Two forms:
- ``--mode inprocess`` (default): the API (httpx ASGI transport), DispatchService, runner,
  planner and fan-out are the production code; the stations are an in-process StationCommands
  answering ``Accepted`` after a simulated round trip (``--rtt-ms``, default 20 ms).
- ``--mode ocpp``: the same, but commands go through the real CSMS (``vpp_core.csms``,
  websockets on loopback, security profile 1) to N light-weight OCPP 2.1 stations
  (``tests/integration/core/dispatch/ocpp_station.py``) run by a child process on its own
  event loop. Still in one host, and the CSMS shares the main process with the runner and the
  API, as in vpp-core. As in vpp-core, the fleet is written behind to SQLite (the command log
  of every command). Once the stations are connected, this process is pinned to CPU 0 and the
  station process to CPU 1 (``--no-pin``): in the field the stations are remote, so their CPU
  must not be charged to the core. Each phase reports the CPU seconds of both processes next
  to the wall time (``cpu_s``).

Phases, per fleet size (JSON out):
- ``profile_survey_s`` (ocpp mode): the runner's background profile survey reading every
  connected station's installed profiles (GetChargingProfiles), before any dispatch;
- ``first_dispatch_s``: POST /api/v1/dispatches until every SetChargingProfile is answered.
  By default the survey has finished first (a core that has been running: the dispatch sends
  no GetChargingProfiles); ``--first right-after-connect`` posts it as soon as the runner
  starts, so the dispatch reads inline what the survey has not (joining reads in flight);
- ``replan_after_dropout_s``: one vehicle unplugs; from the control tick that sees it until the
  re-planned setpoints are answered (these stations send no meter values, so the closed loop
  sees the whole fleet short and every setpoint changes: the worst case, all re-sent);
- ``cancel_and_clear_all_s``: DELETE until every ClearChargingProfile is answered;
- ``later_dispatches_s`` (ocpp mode, ``--repeat`` of them, default 3): the same as the first,
  each after the previous one was cancelled and cleared; median and max.
In ocpp mode each phase also reports the core's CPU, the station process's CPU and the
core's garbage-collector pauses (``gc``: collections, total and longest pause). The core runs
its ``[runtime]`` GC policy (``vpp_core.heap``) as vpp-core does. The station process
runs without the cyclic collector: its 10k stations stand for 10k machines, whose pauses
are not the core's.

    .venv/bin/python benchmarks/dispatch_fanout.py [--stations 1000 10000] [--rtt-ms 20]
    .venv/bin/python benchmarks/dispatch_fanout.py --mode ocpp --stations 1000 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from tests.unit.core.dispatch.scripted_fleet import T0, VirtualClock, until
from vpp_core.api import create_api
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import CommandResult, EndedSession, SessionState
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService

TOKEN = "bench-token"


class InProcessStations:
    """FleetView + StationCommands for N single-EVSE stations; commands answer after an RTT."""

    def __init__(self, n: int, rtt_s: float) -> None:
        self.rtt_s = rtt_s
        self.answered: dict[str, int] = {"set": 0, "get": 0, "clear": 0, "update": 0}
        self._sessions = {
            f"CS{i:05d}": SessionState(
                station_id=f"CS{i:05d}",
                evse_id=1,
                transaction_id=f"tx{i}",
                site=f"site-{i // 100}",
                region="r",
                started_at=T0,
                connected=True,
                soc_pct=70.0,
                soc_at=T0,
                max_discharge_w=11_000.0,
                min_discharge_w=1_400.0,
                max_charge_w=11_000.0,
                min_charge_w=1_400.0,
                target_soc_pct=None,
                departure=None,
                ev_min_v2x_energy_wh=-30_000.0,
                ev_target_energy_wh=None,
                battery_capacity_wh=60_000.0,
                present_power_w=0.0,
                energy_import_wh=0.0,
                energy_export_wh=0.0,
                last_seen=T0,
                ocpp_version="ocpp2.1",
                requested_energy_transfer="DC_BPT",
            )
            for i in range(n)
        }

    def sessions(self) -> list[SessionState]:
        return list(self._sessions.values())

    def ended_session(self, key: SessionKey) -> EndedSession | None:
        return None  # registers stay where the last sample left them

    def unplug(self, station_id: str) -> None:
        del self._sessions[station_id]

    async def _answer(self, kind: str) -> CommandResult:
        await asyncio.sleep(self.rtt_s)
        self.answered[kind] += 1
        return CommandResult("Accepted")

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: Mapping[str, Any]
    ) -> CommandResult:
        return await self._answer("set")

    async def clear_charging_profile(self, station_id: str, **_: Any) -> CommandResult:
        return await self._answer("clear")

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, schedule_update: Mapping[str, Any]
    ) -> CommandResult:
        return await self._answer("update")

    async def get_charging_profiles(self, station_id: str, **_: Any) -> list[dict[str, Any]]:
        await self._answer("get")
        return []


async def measure(n: int, rtt_s: float) -> dict[str, Any]:
    clock = VirtualClock(auto=False)
    stations = InProcessStations(n, rtt_s)
    power_mw = n * 11_000 * 0.5 / 1e6
    body = {"power_mw": power_mw, "direction": "discharge", "duration_s": 600}
    # no meter values in this benchmark
    config = DispatchConfig(final_meter_wait_s=0.0, command_concurrency=CONCURRENCY)
    async with DispatchRunner(stations, stations, clock, config) as runner:
        service = DispatchService(runner)
        app = create_api(service, bearer_token=TOKEN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://vpp", timeout=60
        ) as client:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            if FIRST == "after-survey":  # a core that has been running: profiles already read
                await until(lambda: runner.survey.passes >= 1, timeout_s=120)
            t0 = time.perf_counter()
            r = await client.post("/api/v1/dispatches", json=body, headers=headers)
            first_id = r.json()["id"]
            await until(lambda: stations.answered["set"] >= n, timeout_s=120)
            first_s = time.perf_counter() - t0
            progress = service.get(first_id)
            stations.unplug("CS00000")
            sent_before = stations.answered["set"]
            t1 = time.perf_counter()
            await clock.advance(DispatchConfig().control_period_s)
            await until(
                lambda: (
                    len(progress.intervals) >= 1 and stations.answered["set"] >= sent_before + n - 1
                ),
                timeout_s=120,
            )
            replan_s = time.perf_counter() - t1
            replanned = stations.answered["set"] - sent_before
            await client.delete(f"/api/v1/dispatches/{first_id}", headers=headers)
            second_start = (clock.now() + timedelta(seconds=0)).isoformat()
            sets = stations.answered["set"]
            t2 = time.perf_counter()
            await client.post(
                "/api/v1/dispatches", json={**body, "start": second_start}, headers=headers
            )
            await until(lambda: stations.answered["set"] >= sets + n - 1, timeout_s=120)
            second_s = time.perf_counter() - t2
            for p in service.list():
                runner.cancel(p.dispatch_id)
    return {
        "stations": n,
        "rtt_ms": rtt_s * 1e3,
        "command_concurrency": CONCURRENCY,
        "first_dispatch": FIRST,
        "first_dispatch_s": round(first_s, 3),
        "second_dispatch_s": round(second_s, 3),
        "replan_after_dropout_s": round(replan_s, 3),
        "replanned_setpoints": replanned,
        "answered": stations.answered,
    }


# --- OCPP form --------------------------------------------------------------------------


class CountingCommands:
    """StationCommands proxy that notes when each station answered each kind of command."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answers: list[tuple[float, str, str]] = []  # (perf_counter, kind, station)
        # Stations answered per kind since the last ``mark``: polled every millisecond, so
        # counted as they come (a scan of all answers per poll cost the CSMS's core ~1 s).
        self._since_mark: dict[str, set[str]] = {}

    def _note(self, kind: str, station_id: str) -> None:
        self.answers.append((time.perf_counter(), kind, station_id))
        self._since_mark.setdefault(kind, set()).add(station_id)

    def mark(self) -> float:
        """Start counting answers afresh; returns the time of the mark."""
        self._since_mark = {}
        return time.perf_counter()

    def stations_answered(self, kind: str) -> int:
        return len(self._since_mark.get(kind, ()))

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: Mapping[str, Any]
    ) -> CommandResult:
        result: CommandResult = await self.inner.set_charging_profile(station_id, evse_id, profile)
        self._note("set", station_id)
        return result

    async def clear_charging_profile(self, station_id: str, **kw: Any) -> CommandResult:
        result: CommandResult = await self.inner.clear_charging_profile(station_id, **kw)
        self._note("clear", station_id)
        return result

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, update: Mapping[str, Any]
    ) -> CommandResult:
        result: CommandResult = await self.inner.update_dynamic_schedule(
            station_id, profile_id, update
        )
        self._note("update", station_id)
        return result

    async def get_charging_profiles(self, station_id: str, **kw: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.inner.get_charging_profiles(station_id, **kw)
        self._note("get", station_id)
        return result


def _raise_fd_limit() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def station_process(url: str, n: int) -> None:
    """Child process: N OCPP stations; stdin commands ``unplug <id>`` and ``stop``."""
    from tests.integration.core.dispatch.ocpp_station import OcppStation
    from v2g_sim.ev import EvSpec
    from vpp_core.dispatch.clock import ScaledClock

    _raise_fd_limit()
    # These 10k stations stand for 10k separate machines: one process's full collections
    # (0.3-0.7 s with default thresholds) would stall them all at once and be charged to the
    # core's fan-out. The run is short and the stations make little cyclic garbage.
    gc.disable()
    clock = ScaledClock(start=datetime.now(UTC), speed=1.0)
    ev = EvSpec(
        soc_pct=70.0, max_discharge_w=11_000.0, min_discharge_w=1_400.0, departure_in_s=None
    )
    stations = {
        f"CS{i:05d}": OcppStation(
            f"CS{i:05d}", ev, clock, tau_s=2.0, meter_every_s=1e9, step_s=3600.0
        )
        for i in range(n)
    }
    stop = asyncio.Event()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: list[asyncio.Task[None]] = []
    async with asyncio.TaskGroup() as tg:
        batch: list[asyncio.Event] = []
        for sid, st in stations.items():
            ready = asyncio.Event()
            batch.append(ready)
            tasks.append(
                tg.create_task(st.run(url, PASSWORD, ready=ready, stop=stop), name=f"station-{sid}")
            )
            if len(batch) == 200:
                await asyncio.gather(*(e.wait() for e in batch))
                batch = []
        await asyncio.gather(*(e.wait() for e in batch))
        print("READY", flush=True)
        while line := (await reader.readline()).decode().split():
            if line[0] == "unplug":
                await stations[line[1]].unplug(clock.now())
                print("UNPLUGGED", flush=True)
            elif line[0] == "stop":
                break
        stop.set()
        for task in tasks:  # stations sleep a whole step: do not wait for it
            task.cancel()


PASSWORD = "fanout-station-password"


async def _start_stations(url: str, n: int) -> asyncio.subprocess.Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--station-process",
        url,
        str(n),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    async with asyncio.timeout(600):
        line = await child.stdout.readline()
    if line.strip() != b"READY":
        raise RuntimeError(f"station process: {line!r}")
    return child


class _CpuMeter:
    """CPU seconds since creation of this process (the CSMS, runner and API: the core) and of
    the station child process (stands in for remote stations; not the core's cost)."""

    def __init__(self, child_pid: int | None) -> None:
        import psutil  # type: ignore[import-untyped]

        self._child = psutil.Process(child_pid) if child_pid else None
        self._core0 = time.process_time()
        self._child0 = self._child_s()
        self._wall0 = time.perf_counter()

    def _child_s(self) -> float:
        if self._child is None:
            return 0.0
        t = self._child.cpu_times()
        return float(t.user + t.system)

    def spent(self, *, quiet_s: float = 0.0) -> dict[str, float]:
        """``quiet_s``: trailing idle wall time not to count in the wall figure."""
        wall = time.perf_counter() - self._wall0 - quiet_s
        return {
            "core_process_cpu_s": round(time.process_time() - self._core0, 3),
            "station_process_cpu_s": round(self._child_s() - self._child0, 3),
            "wall_s": round(wall, 3),
        }


class GcPauses:
    """The core's collector pauses (``gc.callbacks``), per generation, since ``mark``; and the
    longest of each generation over the whole run (connecting 10k stations included)."""

    def __init__(self) -> None:
        self._started = 0.0
        self.pauses: list[tuple[int, float]] = []
        self.longest_s = [0.0, 0.0, 0.0]
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation, pause_s = info["generation"], time.perf_counter() - self._started
            self.pauses.append((generation, pause_s))
            self.longest_s[generation] = max(self.longest_s[generation], pause_s)

    def mark(self) -> None:
        self.pauses = []

    def summary(self) -> dict[str, Any]:
        return {
            "collections": len(self.pauses),
            "total_ms": round(sum(d for _, d in self.pauses) * 1e3, 1),
            "max_ms": round(max((d for _, d in self.pauses), default=0.0) * 1e3, 1),
            "by_generation": [sum(1 for g, _ in self.pauses if g == gen) for gen in range(3)],
        }

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)


_PINNED: dict[str, list[int]] = {}
PIN = True  # --no-pin turns it off
FIRST = "after-survey"  # --first right-after-connect: do not wait for the profile survey
WRITE_BEHIND = True  # --no-write-behind turns it off
CONCURRENCY = 1000  # --command-concurrency ([dispatch] command_concurrency)
REPEAT = 3  # --repeat: dispatches after the first (each cancelled and cleared before the next)
RUNTIME: Any = None  # the core's [runtime] (GC policy); --gc-freeze-interval-s overrides


def _pin(pid: int, role: str, cpu: int) -> None:
    """Core on CPU 0, stations on CPU 1 (2-core machines): stations' CPU is not the core's."""
    import os

    if len(os.sched_getaffinity(0)) < 2 and role != "core":
        return
    try:
        os.sched_setaffinity(pid, {cpu})
        _PINNED[role] = [cpu]
    except (OSError, AttributeError):
        pass


async def _quiet_after(
    commands: CountingCommands, since: float, *, quiet_s: float = 1.0
) -> tuple[float, int]:
    """Wait until no command has been answered for ``quiet_s``; (last answer, answers since)."""
    while True:
        await asyncio.sleep(quiet_s / 4)
        recent = [t for t, _, _ in commands.answers if t >= since]
        if recent and time.perf_counter() - recent[-1] >= quiet_s:
            return recent[-1], len(recent)


def _kinds_since(commands: CountingCommands, since: float) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for t, kind, _ in commands.answers:
        if t >= since:
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


@contextlib.asynccontextmanager
async def _written_behind(
    fleet: Any, entries: list[Any], *, enabled: bool
) -> AsyncIterator[str | None]:
    """The fleet written behind to SQLite as in vpp-core (the command log of every command
    included): its thread's CPU is the core's too. Yields the database used, or None."""
    if not enabled:
        yield None
        return
    from vpp_core.fleet import FleetStore, WriteBehind
    from vpp_core.fleet.writer_thread import StoreThread

    with tempfile.TemporaryDirectory(prefix="dispatch-fanout-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'fleet.db'}"
        store = await FleetStore.open(url)
        await store.add_stations(entries, now=datetime.now(UTC))
        await store.close()
        writes = StoreThread(url)
        await writes.start()
        writer = WriteBehind(fleet, writes)
        task = asyncio.create_task(writer.run(), name="fleet-write-behind")
        try:
            yield "sqlite"
        finally:
            writer.stop()
            await task
            await writes.close()


async def _survey(
    runner: DispatchRunner, commands: CountingCommands, child_pid: int, n: int
) -> dict[str, Any]:
    """Let the background profile survey read every station (unless ``FIRST`` says not to)."""
    if FIRST != "after-survey":
        return {}
    commands.mark()
    cpu = _CpuMeter(child_pid)
    await until(lambda: runner.survey.passes >= 1, timeout_s=300)
    spent = cpu.spent()
    return {
        "profile_survey_s": spent["wall_s"],
        "profile_survey_stations_read": len(runner.installed.stations()),
        "profile_survey_concurrency": runner.config.profile_survey_concurrency,
        "cpu_s_profile_survey": spent,
    }


async def measure_ocpp(n: int) -> dict[str, Any]:
    import os

    from vpp_core.fleet import FleetState, StationEntry, hash_password

    _raise_fd_limit()
    # each fleet size starts unpinned: threads started while pinned would inherit CPU 0
    cpus = os.sched_getaffinity(0)
    fleet = FleetState()
    pw = hash_password(PASSWORD)
    entries = [StationEntry(f"CS{i:05d}", 1, True, f"site-{i // 100}", "r", pw) for i in range(n)]
    fleet.set_entries(entries)
    try:
        async with _written_behind(fleet, entries, enabled=WRITE_BEHIND) as database:
            result = await _measure_ocpp(n, fleet)
    finally:
        os.sched_setaffinity(0, cpus)
    return {**result, "write_behind": database}


async def _measure_ocpp(n: int, fleet: Any) -> dict[str, Any]:
    from vpp_core.csms import CsmsConfig, CsmsServer
    from vpp_core.dispatch.clock import SystemClock
    from vpp_core.heap import HeapPolicy

    config = CsmsConfig(
        host="127.0.0.1",
        port=0,
        allow_security_profile_1=True,
        ping_interval_s=0,
        subprotocols=["ocpp2.1"],
        auth_queue_max=50_000,
    )
    pauses = GcPauses()
    async with CsmsServer(config, fleet) as csms, asyncio.TaskGroup() as tasks:
        child = await _start_stations(f"ws://127.0.0.1:{csms.port}/ocpp", n)
        if PIN:
            _pin(child.pid, "stations", 1)
            _pin(0, "core", 0)
        assert child.stdin is not None
        await until(lambda: len(fleet.sessions()) == n, timeout_s=120)
        commands = CountingCommands(csms.commands)
        # these stations send no meter values: nothing to wait for after the window
        dispatch_cfg = DispatchConfig(
            stale_after_s=3600.0, final_meter_wait_s=0.0, command_concurrency=CONCURRENCY
        )
        async with DispatchRunner(fleet, commands, SystemClock(), dispatch_cfg) as runner:
            # as vpp-core does once the CSMS listens (the fleet is connected by now)
            heap = HeapPolicy(RUNTIME, busy=runner.has_running_dispatch)
            heap.start()
            heap_task = tasks.create_task(heap.run(), name="heap-policy")
            service = DispatchService(runner)
            transport = httpx.ASGITransport(app=create_api(service, bearer_token=TOKEN))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://vpp", timeout=120
            ) as client:
                bench = _OcppPhases(n, client, service, commands, child, pauses)
                survey = await _survey(runner, commands, child.pid, n)
                result = await bench.run_phases()
                for p in service.list():
                    runner.cancel(p.dispatch_id)
            heap_task.cancel()
        child.stdin.write(b"stop\n")
        async with asyncio.timeout(60):
            await child.wait()
    pauses.close()
    return {
        "stations": n,
        "command_concurrency": CONCURRENCY,
        "form": "ocpp (real CSMS over loopback websockets)",
        "first_dispatch": FIRST,
        **survey,
        **result,
        "gc": {
            "freeze_interval_s": RUNTIME.gc_freeze_interval_s,
            "gen0_threshold": RUNTIME.gc_gen0_threshold,
            "longest_pause_ms_by_generation": [round(s * 1e3, 1) for s in pauses.longest_s],
        },
        "pinned": _PINNED,
    }


class _OcppPhases:
    """The timed phases against a connected fleet (see the module docstring)."""

    def __init__(
        self,
        n: int,
        client: httpx.AsyncClient,
        service: DispatchService,
        commands: CountingCommands,
        child: asyncio.subprocess.Process,
        pauses: GcPauses,
    ) -> None:
        self.n, self.client, self.service = n, client, service
        self.commands, self.child, self.pauses = commands, child, pauses
        self.body = {"power_mw": n * 11_000 * 0.5 / 1e6, "direction": "discharge"}
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    async def dispatch(self, expected: int) -> tuple[str, float, dict[str, Any]]:
        """POST a dispatch; (id, seconds until ``expected`` stations answered, CPU + GC)."""
        self.pauses.mark()
        t0 = self.commands.mark()
        cpu = _CpuMeter(self.child.pid)
        response = await self.client.post(
            "/api/v1/dispatches", json={**self.body, "duration_s": 600}, headers=self.headers
        )
        dispatch_id = response.json()["id"]
        await until(lambda: self.commands.stations_answered("set") >= expected, timeout_s=120)
        wall = time.perf_counter() - t0
        return dispatch_id, wall, {**cpu.spent(), "gc": self.pauses.summary()}

    async def cancel(self, dispatch_id: str) -> float:
        t = time.perf_counter()
        await self.client.delete(f"/api/v1/dispatches/{dispatch_id}", headers=self.headers)
        await self.service.runner.wait(dispatch_id)  # every clear answered
        return time.perf_counter() - t

    async def run_phases(self) -> dict[str, Any]:
        first_id, first_s, first_cpu = await self.dispatch(self.n)
        first_gets = self.commands.stations_answered("get")
        replan, replan_cpu = await self._replan_after_dropout(first_id)
        cancel_s = await self.cancel(first_id)
        later: list[float] = []
        later_cpu = []
        for _ in range(REPEAT):
            dispatch_id, wall, cpu = await self.dispatch(self.n - 1)
            later.append(wall)
            later_cpu.append(cpu)
            await self.cancel(dispatch_id)
        return {
            "first_dispatch_s": round(first_s, 3),
            "first_dispatch_get_charging_profiles": first_gets,
            "later_dispatches_s": [round(x, 3) for x in later],
            "later_dispatch_median_s": round(statistics.median(later), 3) if later else None,
            "later_dispatch_max_s": round(max(later), 3) if later else None,
            **replan,
            "cancel_and_clear_all_s": round(cancel_s, 3),
            "cpu_s": {
                "first_dispatch": first_cpu,
                "later_dispatches": later_cpu,
                "replan": replan_cpu,
            },
        }

    async def _replan_after_dropout(
        self, dispatch_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One vehicle unplugs: from the tick that sees it until the re-plan is answered."""
        assert self.child.stdin is not None
        progress = self.service.get(dispatch_id)
        self.child.stdin.write(b"unplug CS00000\n")
        await until(lambda: any("drop-out CS00000" in e for e in progress.events), timeout_s=60)
        t_detect = time.perf_counter()
        self.pauses.mark()
        cpu = _CpuMeter(self.child.pid)
        last, replanned = await _quiet_after(self.commands, t_detect)
        spent = cpu.spent(quiet_s=time.perf_counter() - last)
        fields = {
            "replan_after_dropout_s": round(last - t_detect, 3),
            "replanned_commands": replanned,
            "replanned_commands_by_kind": _kinds_since(self.commands, t_detect),
        }
        return fields, {**spent, "gc": self.pauses.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--mode", choices=["inprocess", "ocpp"], default="inprocess")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="ocpp mode: do not pin the core to CPU 0 and the stations to CPU 1 once connected",
    )
    parser.add_argument(
        "--first",
        choices=["after-survey", "right-after-connect"],
        default="after-survey",
        help="time the first dispatch after the profile survey read every station "
        "(default) or as soon as the runner starts",
    )
    parser.add_argument("--station-process", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-write-behind",
        dest="write_behind",
        action="store_false",
        help="ocpp mode: no fleet write-behind to SQLite (vpp-core always has one)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="ocpp mode: dispatches after the first (default 3)"
    )
    parser.add_argument(
        "--gc-freeze-interval-s",
        type=float,
        default=None,
        help="ocpp mode: the core's [runtime] gc_freeze_interval_s (default: the config's; "
        "0 = freeze only at start)",
    )
    parser.add_argument(
        "--command-concurrency",
        type=int,
        default=DispatchConfig().command_concurrency,
        help="ocpp mode: [dispatch] command_concurrency (commands in flight)",
    )
    args = parser.parse_args()
    global PIN, WRITE_BEHIND, FIRST, REPEAT, RUNTIME, CONCURRENCY
    CONCURRENCY = args.command_concurrency
    PIN, WRITE_BEHIND, FIRST, REPEAT = args.pin, args.write_behind, args.first, args.repeat
    from vpp_core.config import RuntimeConfig

    RUNTIME = RuntimeConfig()
    if args.gc_freeze_interval_s is not None:
        RUNTIME = RuntimeConfig(gc_freeze_interval_s=args.gc_freeze_interval_s)
    if args.station_process:
        asyncio.run(station_process(args.station_process[0], int(args.station_process[1])))
        return
    if args.mode == "ocpp":
        results = [asyncio.run(measure_ocpp(n)) for n in args.stations]
    else:
        results = [asyncio.run(measure(n, args.rtt_ms / 1e3)) for n in args.stations]
    print(
        json.dumps(
            {
                "benchmark": "dispatch_fanout",
                "mode": args.mode,
                "target": "< 2 s at 10k stations",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
