"""Frequency-service planner benchmark: ``plan_service`` time for 1k/10k/100k sessions.

A symmetric FCR service over the planner benchmark's fleet (``benchmarks/planner.py``: mixed
SoC, power and departure, 2 % offline), both directions planned from the dispatch columns
over the product's 15 min endurance, under the core's ``[runtime]`` GC policy. Prints JSON.
No target of its own yet; the dispatch planner's is < 100 ms at 100k sessions.

    .venv/bin/python benchmarks/frequency_service_plan.py [--sizes 1000 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.planner import T0, _time_ms, fleet
from vpp_core.config import RuntimeConfig
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.heap import HeapPolicy
from vpp_core.services.allocation import plan_service
from vpp_core.services.products import Product, ServiceRequest


def bench(n: int, repeat: int) -> dict[str, Any]:
    sessions = fleet(n)
    HeapPolicy(RuntimeConfig()).start()
    capacity_w = 2_000.0 * n  # ~ a third of what the fleet can sustain each way
    request = ServiceRequest.of(Product.FCR, capacity_w=capacity_w, start=T0, duration_s=3600.0)
    config = PlannerConfig()
    plan = plan_service(sessions, request, config=config)
    timing = _time_ms(lambda: plan_service(sessions, request, config=config), repeat)
    return {
        "sessions": n,
        "plan_ms": timing,
        "shares": len(plan.shares),
        "feasible": plan.feasible,
        "committed_mw": {d.direction.value: d.committed_w / 1e6 for d in plan.directions},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = [bench(n, args.repeat) for n in args.sizes]
    print(json.dumps({"benchmark": "frequency_service_plan", "results": results}, indent=2))


if __name__ == "__main__":
    main()
