"""Frequency response of a simulated fleet: a grid-frequency step at the simulator, measured at
every vehicle and for the fleet (issue 19).

``--gateways`` gateways (default 50) run in one process as ``v2g_sim.fleet_host`` runs them:
each a real :class:`~v2g_gateway.control.loop.ControlLoop` (the real control law) behind a
SOCK_SEQPACKET pair and a :class:`~v2g_gateway.control.channel.ControlChannel`, over the
simulator's module model (:class:`~v2g_sim.inprocess.ModelPowerStage`; its lag and ramp are
the ``--module-*`` options). The lease comes from an OCPP 2.1 LocalFrequency TxProfile
(wire form) through the station's own validation and composite schedule
(:class:`~v2g_gateway.station.smart_charging.SmartCharging`), renewed every second as the
station does; the websocket link to a CSMS is not part of this (the e2e test covers it).
Every gateway's module reads one site grid frequency
(:class:`~v2g_sim.grid_frequency.GridFrequency`): 50.00 Hz until the output is steady, then a
step to ``--step-to-hz`` (default 49.50). Module power is sampled at ``--sample-hz``
(default 100 Hz) from the step for ``--observe-s`` seconds. Then a 10 Hz trace (+-0.25 Hz
swings, 10 s period, a little noise) is replayed for ``--trace-s`` seconds and the fleet's
measured power is compared with the curve at each instant's frequency.

Printed as JSON: per vehicle and for the fleet, the delay to the first 1 % of the change the
curve asks for and the time to 95 % of it, for the controller's command and for the module's
measured output, against the Dynamic Containment class targets (delay <= 0.5 s, full <= 1 s).

Then FCR (``--fcr-gateways``, default 8; 0 skips it): the core plans an FCR service over EVs
of mixed battery and SoC (two a few % above the SoC floor) with its own ``plan_service`` (each
share what the vehicle sustains for 15 min, headroom 0.9), shapes each share's LocalFrequency
profile with its own ``local_frequency_profile``; the station's validation and composite turn
it into the lease; the real loop runs it. A step to 49.8 Hz (full activation) is held for
``--fcr-endurance-s`` (900 s) of simulated time, compressed ``--fcr-speed`` times (default 15:
every battery capacity divided by 15, so the SoC moves 15 x faster while powers, ramps and
the loop run in real time: 60 s of wall time; ``--fcr-speed 1`` runs the 15 min). Printed
under ``fcr``: the fleet's time to 50 % and 100 % (99 %) of the curve value against FCR's
15 s / 30 s, the response held after full activation, each vehicle's SoC start / end /
minimum against the law's floor (``soc_min_pct + soc_margin_pct``) and its ramp band, and
whether every vehicle still delivered its share at the end.

    .venv/bin/python benchmarks/frequency_response.py
    .venv/bin/python benchmarks/frequency_response.py --gateways 5 --observe-s 3   # smoke
    .venv/bin/python benchmarks/frequency_response.py --only-fcr                   # FCR only
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.station.composite import ActiveTransaction, CompositePeriod
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.frequency_profiles import response_bounds_w
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import ProfileStore, open_state_db
from v2g_sim.charger import SimContactor, SimulatedCharger
from v2g_sim.ev import EvSpec, charging_needs
from v2g_sim.grid_frequency import GridFrequency
from v2g_sim.inprocess import AsyncSleeper, ModelPowerStage
from v2g_sim.modbus_server import RealTimeStepper
from v2g_sim.module import ModuleSpec, PowerModuleModel
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.ports import SessionState
from vpp_core.dispatch.profiles import ProfileSpec
from vpp_core.services.allocation import plan_service
from vpp_core.services.products import Product, ServiceRequest
from vpp_core.services.profiles import local_frequency_profile as local_frequency_profile_of

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


def station_period(
    state_dir: Path, baseline_w: float, *, profile: dict[str, Any] | None = None
) -> CompositePeriod:
    """Install the profile (default: the DC-like curve's) through the station's checks and
    read its composite period."""
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
        wire = profile or local_frequency_profile(baseline_w)
        smart.install(1, wire, transactions=TX, now=NOW)
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
    #: (max charge, max discharge) the station hands the loop (EV and profile limits).
    ev_limits_w: tuple[float, float] = (11000.0, 11000.0)


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
                charge_w, discharge_w = gw.ev_limits_w
                channel.set_ev_limits(max_charge_w=charge_w, max_discharge_w=discharge_w)
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


# --- FCR: 50 % by 15 s, 100 % by 30 s, held 15 min within SoC limits -----------------------

#: FCR fleet: (battery Wh, SoC %) per vehicle, cycled; EV minimum SoC 20 %, 11 kW each way.
#: Two sit a few % above the floor: their share is cut to what they sustain for 15 min.
FCR_EVS = (
    (40_000.0, 27.0),
    (60_000.0, 50.0),
    (60_000.0, 25.0),
    (80_000.0, 45.0),
    (40_000.0, 35.0),
    (60_000.0, 70.0),
)
FCR_FULL_PCT = 99.0  # "100 %": within 1 % of the curve value (the module's lag is asymptotic)


def fcr_evs(n: int) -> list[EvSpec]:
    evs = []
    for i in range(n):
        cap, soc = FCR_EVS[i % len(FCR_EVS)]
        evs.append(
            EvSpec(
                ev_id=f"EV-{i + 1}",
                battery_capacity_wh=cap,
                soc_pct=soc,
                min_soc_pct=20.0,
                max_charge_w=11_000.0,
                max_discharge_w=11_000.0,
                min_discharge_w=0.0,
                min_charge_w=0.0,
                departure_in_s=10 * 3600.0,
            )
        )
    return evs


def fcr_session(i: int, ev: EvSpec) -> SessionState:
    """The core's view of ``ev`` after its NotifyEVChargingNeeds (the simulator's needs)."""
    needs = charging_needs(ev, soc_pct=ev.soc_pct, plugged_at=NOW)
    return SessionState(
        station_id=f"CS-{i + 1}", evse_id=1, transaction_id="tx-1", site="site", region="r",
        started_at=NOW, connected=True, soc_pct=ev.soc_pct, soc_at=NOW,
        max_discharge_w=needs.max_discharge_w, min_discharge_w=needs.min_discharge_w,
        max_charge_w=needs.max_charge_w, min_charge_w=needs.min_charge_w,
        target_soc_pct=needs.target_soc_pct, departure=needs.departure,
        ev_min_v2x_energy_wh=needs.ev_min_v2x_energy_wh,
        ev_target_energy_wh=needs.ev_target_energy_wh,
        battery_capacity_wh=needs.battery_capacity_wh, present_power_w=0.0,
        energy_import_wh=0.0, energy_export_wh=0.0, last_seen=NOW,
        ev_max_v2x_energy_wh=needs.ev_max_v2x_energy_wh, min_soc_pct=needs.min_soc_pct,
        ocpp_version="ocpp2.1", requested_energy_transfer="DC_BPT", needs_at=NOW,
    )  # fmt: skip


def fcr_gateways(
    args: argparse.Namespace, grid: GridFrequency, spec: ModuleSpec
) -> tuple[list[Gateway], list[float], dict[str, Any]]:
    """The core plans an FCR service over the EVs (``plan_service``: shares each vehicle can
    sustain for 15 min), shapes each share's LocalFrequency profile
    (``local_frequency_profile``); the station validates it and composes the lease. Each
    simulated EV's battery is ``--fcr-speed`` times smaller (time compression: SoC moves that
    much faster, powers are real)."""
    evs = fcr_evs(args.fcr_gateways)
    request = ServiceRequest.of(
        Product.FCR, capacity_w=args.fcr_capacity_w, start=NOW, duration_s=7200.0
    )
    plan = plan_service(
        [fcr_session(i, ev) for i, ev in enumerate(evs)], request, config=PlannerConfig()
    )
    gateways, shares = [], []
    for share in plan.shares:
        i = int(share.key.station_id.removeprefix("CS-")) - 1
        profile_spec = ProfileSpec(
            profile_id=19, transaction_id="tx-1", stack_level=50,
            valid_from=NOW - timedelta(minutes=1), valid_to=NOW + timedelta(hours=2),
            max_offline_duration_s=30, kind="Absolute", legacy_negative_limit=False,
            ocpp_version="ocpp2.1",
        )  # fmt: skip
        profile = local_frequency_profile_of(profile_spec, request, share)
        with tempfile.TemporaryDirectory() as tmp:
            period = station_period(Path(tmp), 0.0, profile=profile)
        assert period.freq_curve is not None
        ev = evs[i]
        limits = response_bounds_w(
            period, period.freq_curve, charge_w=ev.max_charge_w, discharge_w=ev.max_discharge_w
        )
        charger = SimulatedCharger.create(i + 1, seed=i + 1, spec=spec, grid=grid)
        small = replace(ev, battery_capacity_wh=ev.battery_capacity_wh / args.fcr_speed)
        charger.model.plug_in(small)
        lease = SetpointLease(period.setpoint_w or 0.0, 30.0, period.freq_curve)
        gateways.append(Gateway(charger, lease, ev_limits_w=limits))
        shares.append(share.discharge_w)
    planned = {
        "capacity_requested_w": args.fcr_capacity_w,
        "committed_w": {d.direction.value: round(d.committed_w, 1) for d in plan.directions},
        "feasible": plan.feasible,
        "message": plan.shortfall_reason or "capacity covered",
    }
    return gateways, shares, planned


async def run_fcr(args: argparse.Namespace) -> dict[str, Any]:
    cfg = ControlSection(period_s=1.0 / args.loop_hz, freq_ramp_w_per_s=args.freq_ramp_w_per_s)
    spec = ModuleSpec(lag_tau_s=args.module_lag_tau_s, ramp_w_per_s=args.module_ramp_w_per_s)
    grid = GridFrequency(nominal_hz=50.0)
    gateways, shares, planned = fcr_gateways(args, grid, spec)
    models = [gw.charger.model for gw in gateways]
    stop = asyncio.Event()
    held_s = args.fcr_endurance_s / args.fcr_speed
    async with asyncio.TaskGroup() as group:
        stepper = group.create_task(RealTimeStepper(models, tick_s=0.01).run())
        runners = [group.create_task(run_gateway(gw, cfg, stop)) for gw in gateways]
        await wait_steady(gateways, 0.0, timeout_s=60.0)
        socs: list[list[float]] = [[] for _ in gateways]
        t0 = time.monotonic()
        for model in models:
            model.grid = grid.step(at_s=model.now_s, to_hz=args.fcr_step_to_hz)
        soc_task = group.create_task(sample_socs(models, socs, t0, held_s))
        await sample(gateways, t0, held_s, args.fcr_sample_hz)
        await soc_task
        stop.set()
        await asyncio.gather(*runners)
        stepper.cancel()
    return fcr_report(args, gateways, shares, socs, cfg, planned)


async def sample_socs(
    models: list[PowerModuleModel], socs: list[list[float]], t0: float, seconds: float
) -> None:
    while time.monotonic() - t0 <= seconds:
        for model, out in zip(models, socs, strict=True):
            out.append(model.soc_pct if model.soc_pct is not None else math.nan)
        await asyncio.sleep(0.1)


def fcr_report(
    args: argparse.Namespace,
    gateways: list[Gateway],
    shares: list[float],
    socs: list[list[float]],
    cfg: ControlSection,
    planned: dict[str, Any],
) -> dict[str, Any]:
    curve_pct = min(1.0, (50.0 - args.fcr_step_to_hz) / 0.2)  # FCR: full at 200 mHz
    goal_w = -sum(shares) * curve_pct
    k_max = min(len(gw.samples) for gw in gateways)
    fleet = [
        (gateways[0].samples[k][0], sum(gw.samples[k][1] for gw in gateways)) for k in range(k_max)
    ]
    half, full = (
        first_time(fleet, 0.0, goal_w, 0.5),
        first_time(fleet, 0.0, goal_w, FCR_FULL_PCT / 100),
    )
    after = [w / goal_w * 100.0 for t, w in fleet if full is not None and t >= full]
    energy_wh = (
        sum((t1 - t0) * w0 for (t0, w0), (t1, _) in itertools.pairwise(fleet))
        / 3600.0
        * args.fcr_speed
    )
    floor_pct = cfg.soc_min_pct + cfg.soc_margin_pct
    vehicles = [
        {
            "share_w": round(share, 1),
            "soc_start_pct": round(soc[0], 2),
            "soc_end_pct": round(soc[-1], 2),
            "soc_min_pct": round(min(soc), 2),
            "held_to_end": gw.samples[k_max - 1][1] <= -0.99 * share * curve_pct,
        }
        for gw, share, soc in zip(gateways, shares, socs, strict=True)
    ]
    return {
        "scenario": f"FCR service planned by the core over {len(gateways)} EVs, "
        f"a step 50.00 -> {args.fcr_step_to_hz} Hz held {args.fcr_endurance_s:g} s",
        "time_compression": {
            "speed": args.fcr_speed,
            "how": "every battery capacity divided by speed: SoC moves speed x faster; "
            "powers, ramps, the loop and the 15/30 s figures are real time",
            "real_seconds_held": round(args.fcr_endurance_s / args.fcr_speed, 1),
        },
        "plan": planned,
        "fleet_target_w": round(goal_w, 1),
        "time_to_50pct_s": None if half is None else round(half, 3),
        "time_to_100pct_s": None if full is None else round(full, 3),
        "full_means_pct": FCR_FULL_PCT,
        "held_after_full_pct_of_target": {
            "min": round(min(after), 2) if after else None,
            "median": round(statistics.median(after), 2) if after else None,
        },
        "energy_delivered_wh_uncompressed": round(energy_wh, 1),
        "energy_target_wh": round(goal_w * args.fcr_endurance_s / 3600.0, 1),
        "soc_floor_pct": floor_pct,
        "soc_ramp_band_top_pct": floor_pct + cfg.soc_ramp_band_pct,
        "vehicles": vehicles,
        "targets": {
            "50pct_by_15s_met": half is not None and half <= 15.0,
            "100pct_by_30s_met": full is not None and full <= 30.0,
            "held_15min_met": all(v["held_to_end"] for v in vehicles),
            "within_soc_limits_met": all(v["soc_min_pct"] > floor_pct for v in vehicles),
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
    parser.add_argument("--fcr-gateways", type=int, default=8, help="0: no FCR phase")
    parser.add_argument("--fcr-capacity-w", type=float, default=60_000.0)
    parser.add_argument("--fcr-step-to-hz", type=float, default=49.8)
    parser.add_argument("--fcr-endurance-s", type=float, default=900.0)
    parser.add_argument("--fcr-speed", type=float, default=15.0, help="time compression")
    parser.add_argument("--fcr-sample-hz", type=float, default=20.0)
    parser.add_argument("--only-fcr", action="store_true", help="skip the step and trace")
    args = parser.parse_args(argv)
    result = {} if args.only_fcr else asyncio.run(run(args))
    if args.fcr_gateways > 0:
        result["fcr"] = asyncio.run(run_fcr(args))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
