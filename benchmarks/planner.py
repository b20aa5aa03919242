"""Planner benchmark: plan time for 1k/10k/100k sessions (target < 100 ms at 100k).

Times, per fleet size, (a) ``build_columns`` (SessionState objects -> numpy columns) and
(b) ``plan_dispatch`` for both algorithms, with station and site limits in force, under the
core's ``[runtime]`` GC policy (``vpp_core.heap``). Prints JSON.
``--profile`` adds the top cProfile entries of one 100k pass (what to optimise next).

    .venv/bin/python benchmarks/planner.py [--sizes 1000 10000 100000] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vpp_core.config import RuntimeConfig
from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.model import Algorithm, Direction
from vpp_core.dispatch.planner import plan_dispatch
from vpp_core.dispatch.ports import SessionState
from vpp_core.heap import HeapPolicy

T0 = datetime(2026, 1, 15, 12, tzinfo=UTC)


def fleet(n: int, seed: int = 1) -> list[SessionState]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        soc = rng.uniform(20, 95)
        cap = rng.choice([40_000.0, 60_000.0, 80_000.0])
        out.append(
            SessionState(
                station_id=f"CS{i // 2:06d}",
                evse_id=1 + i % 2,
                transaction_id=f"tx{i}",
                site=f"site-{i // 200}",
                region=f"r{i % 7}",
                started_at=T0,
                connected=rng.random() > 0.02,
                soc_pct=soc,
                soc_at=T0,
                max_discharge_w=rng.choice([7_000.0, 11_000.0, 22_000.0]),
                min_discharge_w=rng.choice([0.0, 1_400.0]),
                max_charge_w=11_000.0,
                min_charge_w=1_400.0,
                target_soc_pct=80.0,
                departure=T0 + timedelta(hours=rng.uniform(1, 14)),
                ev_min_v2x_energy_wh=(20 - soc) / 100 * cap,
                ev_target_energy_wh=(80 - soc) / 100 * cap,
                battery_capacity_wh=cap,
                present_power_w=0.0,
                energy_import_wh=0.0,
                energy_export_wh=0.0,
                last_seen=T0,
                ocpp_version="ocpp2.1",
                requested_energy_transfer="DC_BPT",
            )
        )
    return out


def _time_ms(fn: Any, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": round(statistics.median(samples), 3), "max_ms": round(max(samples), 3)}


def bench(n: int, repeat: int, *, core_gc: bool = True) -> dict[str, Any]:
    sessions = fleet(n)
    # As in vpp-core: the [runtime] GC policy, the fleet's snapshots frozen as the periodic
    # freeze leaves them. ``--default-gc`` measures with CPython's thresholds instead.
    if core_gc:
        HeapPolicy(RuntimeConfig()).start()
    end = T0 + timedelta(minutes=15)
    cfg = PlannerConfig()
    station_limits = {f"CS{i:06d}": 15_000.0 for i in range(0, n // 2, 3)}
    site_limits = {f"site-{i}": 1_500_000.0 for i in range(n // 200 + 1)}

    def columns() -> Any:
        return build_columns(
            sessions,
            direction=Direction.DISCHARGE,
            window_start=T0,
            window_end=end,
            config=cfg,
            station_limit_w=station_limits,
            site_limit_w=site_limits,
        )

    cols = columns()
    target = -0.5 * n * 11_000.0
    out: dict[str, Any] = {"sessions": n, "build_columns": _time_ms(columns, repeat)}
    algorithms: tuple[Algorithm, ...] = ("proportional", "merit_order")
    for algorithm in algorithms:
        plan = plan_dispatch(
            cols, target_w=target, duration_s=900, headroom=0.9, algorithm=algorithm
        )
        out[algorithm] = _time_ms(
            lambda a=algorithm: plan_dispatch(
                cols, target_w=target, duration_s=900, headroom=0.9, algorithm=a
            ),
            repeat,
        )
        out[algorithm]["sessions_used"] = plan.sessions_used
        out[algorithm]["committed_w"] = round(plan.committed_w)
    out["plan_total_ms"] = round(
        out["build_columns"]["median_ms"] + out["proportional"]["median_ms"], 3
    )
    return out


def profile(n: int) -> str:
    sessions = fleet(n)
    end = T0 + timedelta(minutes=15)
    prof = cProfile.Profile()
    prof.enable()
    cols = build_columns(
        sessions,
        direction=Direction.DISCHARGE,
        window_start=T0,
        window_end=end,
        config=PlannerConfig(),
    )
    plan_dispatch(cols, target_w=-1e8, duration_s=900, headroom=0.9, algorithm="merit_order")
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(12)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="CPython's default GC thresholds instead of the core's [runtime] policy",
    )
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "planner",
        "target": "plan < 100 ms at 100k sessions",
        "gc": "cpython default" if args.default_gc else "core [runtime] policy",
        "results": [bench(n, args.repeat, core_gc=not args.default_gc) for n in args.sizes],
    }
    if args.profile:
        result["profile_100k"] = profile(max(args.sizes)).splitlines()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
