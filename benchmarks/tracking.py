"""Fleet tracking benchmark: the real DispatchRunner against simulated EVs with lag, ramp and
dead-band (``v2g_sim.module.PowerModuleModel``), on virtual time, sampled every second.

Scenarios (JSON out):
- ``constant``: a 0.2 MW discharge for 15 min over 50 vehicles, 10 % unplugging at random
  mid-window: energy error %, share of 1-s samples within +-5 % of target after ramp-in,
  tracking statistics and the deviation attribution of the report;
- ``regulation``: a regulation-style signal (0.12 MW +- 0.08 MW, new value every 2 s, a smoothed
  random walk) with 2-s control: the PJM-style performance score (accuracy, delay, precision).

The stations are the scripted in-process fleet of the dispatch tests (same profile semantics as
a station: highest stackLevel wins, validTo honoured), not OCPP over websockets.

    .venv/bin/python benchmarks/tracking.py [--vehicles 50] [--minutes 15] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tests.unit.core.dispatch.scripted_fleet import T0, ScriptedFleet, VirtualClock
from v2g_sim.ev import EvSpec
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.performance import performance_score
from vpp_core.dispatch.runner import DispatchRunner

RAMP_IN_S = 30.0


class SampledClock(VirtualClock):
    """Virtual time that moves in 1-s steps and records the fleet's power after each."""

    def __init__(self) -> None:
        super().__init__()
        self.fleet: ScriptedFleet | None = None
        self.samples: list[tuple[datetime, float]] = []

    async def sleep_until(self, when: datetime) -> None:
        while self.now() < when:
            self._move_to(min(when, self.now() + timedelta(seconds=1)))
            if self.fleet is not None:
                power = sum(v.module.power_w for v in self.fleet.vehicles.values() if v.plugged)
                self.samples.append((self.now(), power))
        await asyncio.sleep(0)


def build_fleet(clock: SampledClock, n: int, rng: random.Random) -> ScriptedFleet:
    fleet = ScriptedFleet(clock)
    for i in range(n):
        ev = EvSpec(
            soc_pct=rng.uniform(45, 95),
            max_discharge_w=rng.choice([7_000, 9_000, 11_000]),
            min_discharge_w=1_400,
            departure_in_s=rng.uniform(2, 12) * 3600,
            target_soc_pct=80.0,
        )
        fleet.add(f"CS{i:04d}", ev, site=f"site-{i % 5}", tau_s=rng.uniform(1.0, 5.0))
    clock.fleet = fleet
    return fleet


async def run(
    req: DispatchRequest, n: int, seed: int, *, drop_share: float, period_s: float
) -> dict[str, Any]:
    rng = random.Random(seed)
    clock = SampledClock()
    fleet = build_fleet(clock, n, rng)
    for key in rng.sample(list(fleet.vehicles), round(drop_share * n)):
        at = req.start + timedelta(seconds=rng.uniform(0.07, 0.93) * req.duration_s)
        fleet.at(at, functools.partial(fleet.unplug, key))
    wall = time.perf_counter()
    async with DispatchRunner(
        fleet, fleet, clock, DispatchConfig(control_period_s=period_s)
    ) as runner:
        runner.start("bench", req)
        progress = await runner.wait("bench")
    assert progress.report is not None
    t = np.array([(ts - req.start).total_seconds() for ts, _ in clock.samples])
    power = np.array([p for _, p in clock.samples])
    inside = (t > 0) & (t <= req.duration_s)
    target = np.array([req.target_at(ts - timedelta(seconds=1)) for ts, _ in clock.samples])
    return {
        "report": progress.report,
        "t": t[inside],
        "power": power[inside],
        "target": target[inside],
        "wall_s": time.perf_counter() - wall,
    }


def constant(n: int, minutes: float, seed: int) -> dict[str, Any]:
    req = DispatchRequest(
        target_w=-0.2e6 * n / 50, start=T0 + timedelta(seconds=30), duration_s=minutes * 60
    )
    out = asyncio.run(run(req, n, seed, drop_share=0.1, period_s=5.0))
    rep, t, power, target = out["report"], out["t"], out["power"], out["target"]
    after = t > RAMP_IN_S
    within = np.abs(power[after] - target[after]) <= 0.05 * np.abs(target[after])
    return {
        "vehicles": n,
        "minutes": minutes,
        "target_mw": abs(req.target_w) / 1e6,
        "dropouts": round(0.1 * n),
        "control_period_s": 5.0,
        "energy_target_kwh": round(rep.target_energy_wh / 1e3, 3),
        "energy_delivered_kwh": round(rep.delivered_energy_wh / 1e3, 3),
        "energy_error_pct": round(rep.energy_error_pct, 3),
        "within_5pct_share_1s_after_ramp_in": round(float(within.mean()), 4),
        "ramp_in_s": RAMP_IN_S,
        "tracking_rmse_kw_1s": round(
            float(np.sqrt(np.mean((power[after] - target[after]) ** 2))) / 1e3, 3
        ),
        "attribution_wh": {k: round(v, 1) for k, v in vars_of(rep.attribution).items()},
        "wall_s": round(out["wall_s"], 2),
    }


def regulation_signal(n_steps: int, rng: random.Random) -> list[float]:
    """A smoothed random walk in [-1, 1], one value per step (RegD-like, not PJM's own data)."""
    x, v, out = 0.0, 0.0, []
    for _ in range(n_steps):
        v = 0.9 * v + rng.gauss(0, 0.05)
        x = max(-1.0, min(1.0, x + v))
        out.append(x)
    return out


def regulation(n: int, minutes: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + 100)
    base, amp, step_s = 0.12e6 * n / 50, 0.08e6 * n / 50, 2.0
    sig = regulation_signal(int(minutes * 60 / step_s), rng)
    schedule = tuple(-(base + amp * s) for s in sig)
    req = DispatchRequest(
        target_w=-(base + amp),
        start=T0 + timedelta(seconds=30),
        duration_s=minutes * 60,
        schedule_w=schedule,
        schedule_step_s=step_s,
    )
    out = asyncio.run(run(req, n, seed, drop_share=0.0, period_s=step_s))
    t, power, target = out["t"], out["power"], out["target"]
    keep = (t > RAMP_IN_S) & (np.round(t) % step_s == 0)
    score = performance_score(
        -target[keep] / 1e6, -power[keep] / 1e6, sample_s=step_s, step_s=step_s
    )
    return {
        "vehicles": n,
        "minutes": minutes,
        "signal": "0.12 MW +- 0.08 MW discharge, 2-s steps",
        "control_period_s": step_s,
        # a varying signal: both are defined (None only for a constant one)
        "accuracy": None if score.accuracy is None else round(score.accuracy, 4),
        "delay": None if score.delay is None else round(score.delay, 4),
        "delay_s": score.delay_s,
        "precision": round(score.precision, 4),
        "composite": round(score.composite, 4),
        "energy_error_pct": round(out["report"].energy_error_pct, 3),
        "wall_s": round(out["wall_s"], 2),
    }


def vars_of(obj: Any) -> dict[str, float]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--regulation-minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = {
        "benchmark": "tracking",
        "vehicle_model": "v2g_sim PowerModuleModel: lag tau 1-5 s, ramp 3 kW/s, dead-band 50 W",
        "constant": constant(args.vehicles, args.minutes, args.seed),
        "regulation": regulation(args.vehicles, args.regulation_minutes, args.seed),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
