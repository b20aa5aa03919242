"""Control-loop lateness while the supervisor is busy.

For each loop rate (default 10 Hz and 100 Hz) this starts a fresh control process and, in
the supervisor process, a loopback websocket exchange of OCPP-like CALL/CALLRESULT frames at
``--ocpp-rate`` messages/s; every answered CALL counts as CSMS contact and a lease is
renewed every second, as the station will do. The control process reports its own wake-up
lateness (histogram, 10 µs bins), p50/p99/max and overruns; printed as JSON.

    .venv/bin/python benchmarks/control_loop.py                 # 10 s per rate, v2g-sim
    .venv/bin/python benchmarks/control_loop.py --duration 60   # the full run
    .venv/bin/python benchmarks/control_loop.py --hardware memory   # no Modbus/pty in the loop

``--hardware sim`` runs the real control process (``v2g_gateway.control_host``) against a
``v2g-sim`` on a pty; ``memory`` runs the same ControlLoop with an in-memory power stage,
isolating the scheduler from the Modbus round trips.

``--case profile-install`` replaces the OCPP load with what the station does around a
SetChargingProfile, on its real state database: a tick every 0.5 s granting a 2 s lease (the
station's defaults) and persisting the last contact, and every ``--install-every`` s a
profile installed and a TransactionEvent queued, answered once ``StateFlusher`` made them
durable. ``--io-load`` runs a ``dd ... conv=fsync`` writer beside it (started and killed
here); ``--sync-on-loop`` restores the old ``synchronous=FULL`` (every commit fsyncs on the
event loop). It adds the supervisor's longest tick gap and the control loop's
``LEASE_EXPIRED`` count to each run:

    .venv/bin/python benchmarks/control_loop.py --case profile-install --io-load \
        --hardware memory --rates 10 --duration 20 [--sync-on-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from v2g_gateway.config import ControlProcessConfig
from v2g_gateway.contactor import ContactorSection
from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.ports import StageMeasurement, StageRatings
from v2g_gateway.control_host import ControlProcess
from v2g_gateway.devices import SimulatorSection
from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.station.durability import StateFlusher
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.profiles import parse_profile
from v2g_gateway.station.store import ProfileStore, open_state_db, state_db_path

TARGET_P99_US_AT_10HZ = 2000.0


# --- the busy supervisor -------------------------------------------------------------------
async def _csms(ws: ServerConnection) -> None:
    async for frame in ws:
        message = json.loads(frame)
        await ws.send(json.dumps([3, message[1], {"currentTime": "2026-01-01T00:00:00Z"}]))


async def ocpp_load(channel: ControlChannel, *, rate: float, stop: asyncio.Event) -> int:
    """Send ``rate`` CALLs per second over loopback websockets until ``stop``; returns the
    number answered."""
    answered = 0
    async with serve(_csms, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=["ocpp2.1"]) as ws:  # type: ignore[list-item]
            batch = max(1, round(rate / 100))
            interval = batch / rate
            next_send = time.monotonic()
            while not stop.is_set():
                for i in range(batch):
                    call = [2, f"{answered}-{i}", "MeterValues", {"evseId": 1, "meterValue": []}]
                    await ws.send(json.dumps(call))
                for _ in range(batch):
                    json.loads(await ws.recv())
                    answered += 1
                    channel.mark_csms_contact()
                next_send += interval
                await asyncio.sleep(max(0.0, next_send - time.monotonic()))
    return answered


async def lease_source(channel: ControlChannel, stop: asyncio.Event) -> None:
    channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=11000.0)
    while not stop.is_set():
        channel.grant_lease(SetpointLease(-3000.0, 3.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


# --- the station's writes around a SetChargingProfile ----------------------------------------
_TICK_S, _LEASE_S = 0.5, 2.0  # the station's control_tick_s and lease_valid_for_s defaults


def _profile_wire(setpoint_w: float) -> dict[str, Any]:
    return {
        "id": 50,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": "tx-1",
        "charging_schedule": [
            {
                "id": 50,
                "start_schedule": "2026-01-01T00:00:00+00:00",
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": 0, "operation_mode": "CentralSetpoint", "setpoint": setpoint_w}
                ],
            }
        ],
    }


class StationWrites:
    """The station's state database and its writes, on this event loop."""

    def __init__(self, state_dir: Path, *, sync_on_loop: bool) -> None:
        self.db = open_state_db(state_dir)
        if sync_on_loop:
            self.db.execute("PRAGMA synchronous=FULL")
        self.store = ProfileStore(self.db)
        self.journal = TransactionJournal(self.db)
        self.flusher = StateFlusher(state_db_path(state_dir))
        self.journal.begin(1, "tx-1", datetime.now(UTC))
        self.max_tick_gap_s = 0.0
        self.installs = 0

    async def ticks(self, channel: ControlChannel, stop: asyncio.Event) -> None:
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=11000.0)
        last = time.monotonic()
        while not stop.is_set():
            channel.mark_csms_contact()
            channel.grant_lease(SetpointLease(-3000.0, _LEASE_S))
            self.journal.put("last_csms_contact", datetime.now(UTC).isoformat())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_TICK_S)
            now = time.monotonic()
            self.max_tick_gap_s = max(self.max_tick_gap_s, now - last)
            last = now

    async def installs_every(self, every_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wire = _profile_wire(-3000.0 - self.installs % 2 * 500.0)
            profile = parse_profile(wire, evse_id=1, received_at=datetime.now(UTC))
            self.store.install(profile, wire)
            self.journal.enqueue(
                1, {"event_type": "Updated", "trigger_reason": "ChargingRateChanged"}
            )
            await self.flusher.flushed()  # the Accepted waits for this
            self.installs += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    def close(self) -> None:
        self.flusher.close()
        self.db.close()


@contextlib.contextmanager
def io_load(tmp: Path, enabled: bool) -> Iterator[None]:
    """A writer that keeps the disk's queue full of data to sync."""
    if not enabled:
        yield
        return
    target = tmp / "io-load"
    script = f"while :; do dd if=/dev/zero of={target} bs=1M count=512 conv=fsync status=none; done"
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, 9)
        process.wait()
        target.unlink(missing_ok=True)


async def count_lease_lapses(channel: ControlChannel, counts: dict[str, int]) -> None:
    events = channel.subscribe_events()
    while True:
        event = await events.get()
        if event.code == EventCode.LEASE_EXPIRED:
            counts["lease_expired"] += 1


async def station_case(
    args: argparse.Namespace, channel: ControlChannel, tmp: Path, stop: asyncio.Event
) -> dict[str, Any]:
    writes = StationWrites(tmp / f"state-{time.monotonic_ns()}", sync_on_loop=args.sync_on_loop)
    counts = {"lease_expired": 0}
    try:
        with io_load(tmp, args.io_load):
            async with asyncio.TaskGroup() as group:
                lapses = group.create_task(count_lease_lapses(channel, counts))
                group.create_task(writes.ticks(channel, stop))
                group.create_task(writes.installs_every(args.install_every, stop))
                await asyncio.sleep(args.duration)
                stop.set()
                await asyncio.sleep(0.3)  # the loop's last events arrive
                lapses.cancel()
    finally:
        writes.close()
    return {
        "profile_installs": writes.installs,
        "max_station_tick_gap_s": round(writes.max_tick_gap_s, 3),
        "lease_expired": counts["lease_expired"],
    }


# --- control process variants --------------------------------------------------------------
@contextlib.contextmanager
def simulator(tmp: Path) -> Iterator[tuple[str, Path]]:
    sock = tmp / "sim.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "v2g_sim.cli", "serve", "--socket", str(sock), "--plug-in"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20.0)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("tty: "):
            raise RuntimeError(f"v2g-sim did not start: {line!r}")
        deadline = time.monotonic() + 20.0
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield line.split()[1], sock
    finally:
        process.terminate()
        process.wait(timeout=10)


async def start_sim_control(
    period_s: float, tty: str, sim_sock: Path, tmp: Path, *, priority: int
) -> ControlProcess:
    relay = tmp / "relay"
    relay.write_text("0")
    cfg = ControlProcessConfig(
        control=ControlSection(period_s=period_s, ramp_w_per_s=5000.0, realtime_priority=priority),
        power_module=PowerModuleSection(port=tty, parity="N", timeout_s=0.3, retries=1),
        power_sensor={"kind": "simulated", "calibration_file": str(tmp / "cal.json")},  # type: ignore[arg-type]
        contactor=ContactorSection(kind="gpio_sysfs", gpio_value_path=relay),
        simulator=SimulatorSection(socket=sim_sock),
        log_level="WARNING",
    )
    return await ControlProcess.start(cfg)


async def start_memory_control(period_s: float) -> tuple[asyncio.subprocess.Process, socket.socket]:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child-fd",
        str(child.fileno()),
        "--child-period",
        str(period_s),
        pass_fds=(child.fileno(),),
    )
    child.close()
    return process, parent


class MemoryStage:
    def __init__(self) -> None:
        self.power_w = 0.0

    async def read_ratings(self) -> StageRatings:
        return StageRatings(11000.0, 11000.0)

    async def read_measurement(self) -> StageMeasurement:
        return StageMeasurement(self.power_w, 60.0, 50.0, 230.0, True, 0.0, 0.0)

    async def write_setpoint(self, power_w: float) -> None:
        self.power_w = power_w

    async def set_energized(self, energized: bool) -> None:
        pass

    async def program_revert(self, *, timeout_s: float, revert_power_w: float = 0.0) -> None:
        pass


class MemoryRelay:
    closed = False

    def open(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def run_memory_child(fd: int, period_s: float) -> int:
    from v2g_gateway.control.loop import ControlLoop

    stage = MemoryStage()

    class Sensor:
        def read_power_w(self) -> float:
            return stage.power_w

    loop = ControlLoop(
        stage=stage,
        sensor=Sensor(),
        contactor=MemoryRelay(),
        sock=socket.socket(fileno=fd),
        settings=ControlSection(period_s=period_s, ramp_w_per_s=5000.0),
    )
    return asyncio.run(loop.run())


# --- one measured run ----------------------------------------------------------------------
async def measure(
    args: argparse.Namespace, rate_hz: float, tmp: Path, sim: tuple[str, Path] | None
) -> dict[str, Any]:
    period = 1.0 / rate_hz
    if sim is not None:
        control = await start_sim_control(
            period, sim[0], sim[1], tmp, priority=args.realtime_priority
        )
        process, sock = control.process, control.sock
    else:
        process, sock = await start_memory_control(period)
    async with ControlChannel(sock) as channel:
        await channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=30)
        stop = asyncio.Event()
        first = channel.snapshot()
        started = time.monotonic()
        if args.case == "profile-install":
            case = await station_case(args, channel, tmp, stop)
            last = channel.snapshot()
        else:
            case = await ocpp_case(args, channel, stop)
            last = channel.snapshot()
            case["ocpp_msgs_per_s"] = round(case["ocpp_messages"] / (time.monotonic() - started), 1)
        channel.request_stop()
        await asyncio.wait_for(process.wait(), timeout=30)
    return {
        "rate_hz": rate_hz,
        "cycles": last.cycles - first.cycles,
        "lateness_us": {
            "p50": round(last.lateness_p50_us, 1),
            "p99": round(last.lateness_p99_us, 1),
            "max": round(last.lateness_max_us, 1),
        },
        "overruns": last.overruns,
        **case,
        "commanded_w_at_end": last.commanded_w,
    }


async def ocpp_case(
    args: argparse.Namespace, channel: ControlChannel, stop: asyncio.Event
) -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        load = group.create_task(ocpp_load(channel, rate=args.ocpp_rate, stop=stop))
        group.create_task(lease_source(channel, stop))
        await asyncio.sleep(args.duration)
        stop.set()
    return {"ocpp_messages": load.result()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with contextlib.ExitStack() as stack:
            sim = stack.enter_context(simulator(tmp)) if args.hardware == "sim" else None
            for rate in args.rates:
                results.append(await measure(args, rate, tmp, sim))
    ten = next((r for r in results if r["rate_hz"] == 10.0), None)
    return {
        "benchmark": "control_loop_lateness",
        "case": args.case,
        "io_load": args.io_load,
        "sync_on_loop": args.sync_on_loop,
        "load_avg_1min_at_start": args.load_at_start,
        "hardware": args.hardware,
        "realtime_priority": args.realtime_priority,
        "duration_s_per_rate": args.duration,
        "ocpp_rate_target": args.ocpp_rate,
        "host": {
            "python": platform.python_version(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
        },
        "runs": results,
        "target": {
            "p99_us_at_10hz": TARGET_P99_US_AT_10HZ,
            "met": None if ten is None else ten["lateness_us"]["p99"] < TARGET_P99_US_AT_10HZ,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 100.0])
    parser.add_argument("--ocpp-rate", type=float, default=1000.0, help="CALLs per second")
    parser.add_argument("--hardware", choices=("sim", "memory"), default="sim")
    parser.add_argument(
        "--realtime-priority",
        type=int,
        default=0,
        help="SCHED_FIFO priority of the control process (sim hardware; 0 = normal)",
    )
    parser.add_argument("--case", choices=("ocpp", "profile-install"), default="ocpp")
    parser.add_argument("--install-every", type=float, default=0.3, help="s between profiles")
    parser.add_argument("--io-load", action="store_true", help="a dd conv=fsync writer beside")
    parser.add_argument(
        "--sync-on-loop", action="store_true", help="the old synchronous=FULL state database"
    )
    parser.add_argument("--child-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-period", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_fd is not None:
        return run_memory_child(args.child_fd, args.child_period)
    args.load_at_start = os.getloadavg()[0]
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
