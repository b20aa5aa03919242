"""Frequency response of a simulated fleet: a grid-frequency step at the simulator, measured at
every vehicle and for the fleet (issue 19).

``--gateways`` gateways (default 50) run in one process as ``v2g_sim.fleet_host`` runs them:
each a real :class:`~v2g_gateway.control.loop.ControlLoop` (the real control law) behind a
SOCK_SEQPACKET pair and a :class:`~v2g_gateway.control.channel.ControlChannel`, over the
simulator's module model (:class:`~v2g_sim.inprocess.ModelPowerStage`; its lag and ramp are
the ``--module-*`` options). The lease comes from an OCPP 2.1 LocalFrequency TxProfile
(wire form) through the station's own validation and composite schedule
(:class:`~v2g_gateway.station.smart_charging.SmartCharging`), renewed every second as the
station does; the websocket link to a CSMS is not part of this (the core side of frequency
services does not exist yet). Every gateway's module reads one site grid frequency
(:class:`~v2g_sim.grid_frequency.GridFrequency`): 50.00 Hz until the output is steady, then a
step to ``--step-to-hz`` (default 49.50). Module power is sampled at ``--sample-hz``
(default 100 Hz) from the step for ``--observe-s`` seconds. Then a 10 Hz trace (+-0.25 Hz
swings, 10 s period, a little noise) is replayed for ``--trace-s`` seconds and the fleet's
measured power is compared with the curve at each instant's frequency.

Printed as JSON: per vehicle and for the fleet, the delay to the first 1 % of the change the
curve asks for and the time to 95 % of it, for the controller's command and for the module's
measured output, against the Dynamic Containment class targets (delay <= 0.5 s, full <= 1 s).

    .venv/bin/python benchmarks/frequency_response.py
    .venv/bin/python benchmarks/frequency_response.py --gateways 5 --observe-s 3   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.station.composite import ActiveTransaction, CompositePeriod
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import ProfileStore, open_state_db
from v2g_sim.charger import SimContactor, SimulatedCharger
from v2g_sim.ev import EvSpec
from v2g_sim.grid_frequency import GridFrequency
from v2g_sim.inprocess import AsyncSleeper, ModelPowerStage
from v2g_sim.modbus_server import RealTimeStepper
from v2g_sim.module import ModuleSpec, PowerModuleModel

TARGET_DELAY_S = 0.5
TARGET_FULL_S = 1.0
#: Trace samples this early are not scored: they answer the jump from the step's frequency.
TRACE_WARMUP_S = 2.0
#: A Dynamic Containment-like droop: full discharge at 49.5 Hz, dead-band +-15 mHz.
CURVE = [
    {"frequency": 49.5, "power": -10000.0},
    {"frequency": 49.985, "power": 0.0},
    {"frequency": 50.015, "power": 0.0},
    {"frequency": 50.5, "power": 10000.0},
]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TX = {1: ActiveTransaction("tx-1", NOW - timedelta(minutes=5))}


def local_frequency_profile(baseline_w: float) -> dict[str, Any]:
    """The TxProfile a CSMS would send (adapter's snake_case form)."""
    return {
        "id": 19,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": "tx-1",
        "max_offline_duration": 30,
        "charging_schedule": [
            {
                "id": 19,
                "start_schedule": NOW.isoformat(),
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {
                        "start_period": 0,
                        "operation_mode": "LocalFrequency",
                        "v2x_baseline": baseline_w,
                        "v2x_freq_watt_curve": CURVE,
                    }
                ],
            }
        ],
    }


def station_period(state_dir: Path, baseline_w: float) -> CompositePeriod:
    """Install the profile through the station's checks and read its composite period."""
    config = StationConfig(
        csms_url="ws://127.0.0.1:9/ocpp",
        identity="CS-BENCH",
        security_profile=1,
        password="p" * 16,
        state_dir=state_dir,
    )
    db = open_state_db(state_dir)
    try:
        smart = SmartCharging(config, ProfileStore(db), may_discharge=lambda _evse: True)
        smart.install(1, local_frequency_profile(baseline_w), transactions=TX, now=NOW)
        return smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None).at(
            NOW
        )
    finally:
        db.close()


class ModelSensor:
    """The independent sensor reads the module's true output (the INA228 path is covered by
    the fleet host and the hardware tests; here it would only add i2c arithmetic)."""

    def __init__(self, model: PowerModuleModel) -> None:
        self._model = model

    def read_power_w(self) -> float:
        return self._model.power_w


@dataclass
class Gateway:
    charger: SimulatedCharger
    lease: SetpointLease
    channel: ControlChannel | None = None
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # t, P, command


async def run_gateway(gw: Gateway, cfg: ControlSection, stop: asyncio.Event) -> None:
    loop_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    model = gw.charger.model
    control = ControlLoop(
        stage=ModelPowerStage(model),
        sensor=ModelSensor(model),
        contactor=SimContactor(model),
        sock=loop_end,
        settings=cfg,
        sleeper=AsyncSleeper(),
    )
    try:
        async with ControlChannel(supervisor_end) as channel, asyncio.TaskGroup() as group:
            gw.channel = channel
            task = group.create_task(control.run())
            while not stop.is_set():  # the station's tick: limits, contact, lease
                channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=11000.0)
                channel.mark_csms_contact()
                channel.grant_lease(gw.lease)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
            channel.request_stop()
            await task
    finally:
        loop_end.close()
        supervisor_end.close()


def first_time(
    samples: list[tuple[float, float]], start_w: float, goal_w: float, frac: float
) -> float | None:
    """Seconds from the step until the value first covers ``frac`` of the change."""
    change = goal_w - start_w
    for t, value in samples:
        if (value - start_w) * math.copysign(1.0, change) >= frac * abs(change):
            return t
    return None


def response(samples: list[tuple[float, float]], start_w: float, goal_w: float) -> dict[str, Any]:
    delay = first_time(samples, start_w, goal_w, 0.01)
    full = first_time(samples, start_w, goal_w, 0.95)
    return {
        "delay_to_1pct_s": None if delay is None else round(delay, 3),
        "time_to_95pct_s": None if full is None else round(full, 3),
        "final_w": round(samples[-1][1], 1) if samples else None,
    }


def summary(values: list[float | None]) -> dict[str, Any]:
    known = sorted(v for v in values if v is not None)
    if not known:
        return {"missing": len(values)}
    return {
        "min_s": round(known[0], 3),
        "median_s": round(statistics.median(known), 3),
        "max_s": round(known[-1], 3),
        "missing": len(values) - len(known),
    }


async def sample(
    gateways: list[Gateway],
    t0: float,
    seconds: float,
    hz: float,
    *,
    freqs: list[float] | None = None,
    model: PowerModuleModel | None = None,
) -> None:
    """Every gateway's (t, measured P, command) at ``hz``; the site frequency into ``freqs``."""
    period = 1.0 / hz
    deadline = t0
    while True:
        now = time.monotonic()
        if now - t0 > seconds:
            return
        for gw in gateways:
            snap = gw.channel.snapshot() if gw.channel else None
            command = snap.commanded_w if snap else math.nan
            gw.samples.append((now - t0, gw.charger.model.power_w, command))
        if freqs is not None and model is not None:
            freqs.append(model.grid_freq_hz)
        deadline += period
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def wait_steady(gateways: list[Gateway], baseline_w: float, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if all(
            gw.channel is not None
            and gw.channel.snapshot().contactor_closed
            and abs(gw.charger.model.power_w - baseline_w) < 1.0
            for gw in gateways
        ):
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the fleet did not settle at {baseline_w} W in {timeout_s} s")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = ControlSection(period_s=1.0 / args.loop_hz, freq_ramp_w_per_s=args.freq_ramp_w_per_s)
    spec = ModuleSpec(lag_tau_s=args.module_lag_tau_s, ramp_w_per_s=args.module_ramp_w_per_s)
    with tempfile.TemporaryDirectory() as tmp:
        period = station_period(Path(tmp), args.baseline_w)
    assert period.freq_curve is not None
    lease = SetpointLease(period.setpoint_w or 0.0, 30.0, period.freq_curve)
    grid = GridFrequency(nominal_hz=50.0)
    gateways = []
    for i in range(args.gateways):
        charger = SimulatedCharger.create(i + 1, seed=i + 1, spec=spec, grid=grid)
        charger.model.plug_in(
            EvSpec(ev_id=f"EV-{i + 1}", soc_pct=60.0, battery_capacity_wh=60000.0)
        )
        gateways.append(Gateway(charger, lease))
    models = [gw.charger.model for gw in gateways]
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        stepper = group.create_task(RealTimeStepper(models, tick_s=0.01).run())
        runners = [group.create_task(run_gateway(gw, cfg, stop)) for gw in gateways]
        settle_s = await wait_steady(gateways, args.baseline_w, timeout_s=60.0)
        t0 = time.monotonic()
        for model in models:  # the site's frequency steps now (each model's own time base)
            model.grid = grid.step(at_s=model.now_s, to_hz=args.step_to_hz)
        await sample(gateways, t0, args.observe_s, args.sample_hz)
        goal_w = args.baseline_w + lease.curve.value_w(args.step_to_hz)  # type: ignore[union-attr]
        step = report(args, gateways, goal_w, settle_s, spec, cfg)
        trace = await follow_trace(gateways, models, lease, args) if args.trace_s > 0 else None
        stop.set()
        await asyncio.gather(*runners)
        stepper.cancel()
    return {**step, "trace": trace}


def synthetic_trace(seconds: float) -> list[tuple[float, float]]:
    """10 Hz samples: +-0.25 Hz swings with a 10 s period and a little seeded noise."""
    rng = random.Random(19)
    return [
        (k / 10, 50.0 + 0.25 * math.sin(2 * math.pi * k / 100) + rng.gauss(0.0, 0.003))
        for k in range(round(seconds * 10) + 1)
    ]


async def follow_trace(
    gateways: list[Gateway],
    models: list[PowerModuleModel],
    lease: SetpointLease,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Replay the trace at the site and compare the fleet's measured power with the curve at
    the frequency of the same instant (lag included), in % of the fleet's full response."""
    assert lease.curve is not None
    samples = synthetic_trace(args.trace_s)
    for gw in gateways:
        gw.samples.clear()
    t0 = time.monotonic()
    for model in models:
        model.grid = model.grid.replay(samples, at_s=model.now_s) if model.grid else None
    freqs: list[float] = []
    await sample(gateways, t0, args.trace_s, args.sample_hz, freqs=freqs, model=models[0])
    n = len(gateways)
    full_w = n * max(abs(p) for p in lease.curve.power_w)
    errors = []
    for k, freq in enumerate(freqs):
        if gateways[0].samples[k][0] < TRACE_WARMUP_S:
            continue  # the jump from the step's 49.5 Hz to the trace's start
        fleet_w = sum(gw.samples[k][1] for gw in gateways)
        curve_w = n * (lease.power_w + lease.curve.value_w(freq))
        errors.append(abs(fleet_w - curve_w) / full_w * 100.0)
    errors.sort()
    return {
        "seconds": args.trace_s,
        "scored_from_s": TRACE_WARMUP_S,
        "trace_hz": 10,
        "error_pct_of_full_response": {
            "p50": round(statistics.median(errors), 2),
            "p95": round(errors[int(0.95 * (len(errors) - 1))], 2),
            "max": round(errors[-1], 2),
        },
        "within_5pct_share": round(sum(e <= 5.0 for e in errors) / len(errors), 4),
    }


def report(
    args: argparse.Namespace,
    gateways: list[Gateway],
    goal_w: float,
    settle_s: float,
    spec: ModuleSpec,
    cfg: ControlSection,
) -> dict[str, Any]:
    base = args.baseline_w
    per_vehicle = [response([(t, p) for t, p, _ in gw.samples], base, goal_w) for gw in gateways]
    commands = [response([(t, c) for t, _, c in gw.samples], base, goal_w) for gw in gateways]
    n = len(gateways)
    fleet = [
        (gateways[0].samples[k][0], sum(gw.samples[k][1] for gw in gateways))
        for k in range(min(len(gw.samples) for gw in gateways))
    ]
    fleet_response = response(fleet, base * n, goal_w * n)
    delay, full = fleet_response["delay_to_1pct_s"], fleet_response["time_to_95pct_s"]
    return {
        "benchmark": "frequency_response",
        "gateways": n,
        "step_hz": [50.0, args.step_to_hz],
        "curve": CURVE,
        "baseline_w": base,
        "curve_value_w_per_vehicle": goal_w,
        "loop_hz": args.loop_hz,
        "freq_ramp_w_per_s": cfg.freq_ramp_w_per_s,
        "module": {"lag_tau_s": spec.lag_tau_s, "ramp_w_per_s": spec.ramp_w_per_s},
        "sample_hz": args.sample_hz,
        "settle_before_step_s": round(settle_s, 2),
        "fleet": {**fleet_response, "target_w": goal_w * n},
        "per_vehicle_measured": {
            "delay_to_1pct": summary([r["delay_to_1pct_s"] for r in per_vehicle]),
            "time_to_95pct": summary([r["time_to_95pct_s"] for r in per_vehicle]),
        },
        "per_vehicle_command": {
            "delay_to_1pct": summary([r["delay_to_1pct_s"] for r in commands]),
            "time_to_95pct": summary([r["time_to_95pct_s"] for r in commands]),
        },
        "targets": {
            "delay_s": TARGET_DELAY_S,
            "full_s": TARGET_FULL_S,
            "fleet_delay_met": delay is not None and delay <= TARGET_DELAY_S,
            "fleet_full_met": full is not None and full <= TARGET_FULL_S,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--loop-hz", type=float, default=20.0)
    parser.add_argument("--freq-ramp-w-per-s", type=float, default=50000.0)
    parser.add_argument("--module-lag-tau-s", type=float, default=0.1)
    parser.add_argument("--module-ramp-w-per-s", type=float, default=50000.0)
    parser.add_argument("--baseline-w", type=float, default=0.0)
    parser.add_argument("--step-to-hz", type=float, default=49.5)
    parser.add_argument("--observe-s", type=float, default=5.0)
    parser.add_argument("--sample-hz", type=float, default=100.0)
    parser.add_argument("--trace-s", type=float, default=30.0, help="0: no trace phase")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
