"""Polling simulated power modules over a real tty (pty pair) with the production driver.

One RS-485 line = one pymodbus client shared by the drivers of every device id on it (as the
daemon would wire a multi-drop bus). Measures the latency of ``read_measurement`` (two
Modbus transactions: 701 block + 713 SoC) and the time to poll the whole line once, while
the simulator steps every model in real time. Also measures the simulator's model cost
(sim-seconds stepped per CPU-second for the whole fleet), which bounds the demo's size.

Prints one JSON object. Defaults take ~5 s. A pty does not pace bytes at the baud rate, so
the latencies are the software floor; on RS-485 add the wire time (~1 ms per 11 bytes at
115200, ~6 ms at 19200).

    .venv/bin/python benchmarks/power_module_poll.py
    .venv/bin/python benchmarks/power_module_poll.py --chargers 50 --baudrate 19200 --duration-s 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.hw.errors import PowerModuleError
from v2g_gateway.hw.power_module import FrameMonitor, RegisterLink, SunSpecPowerModule
from v2g_gateway.hw.power_module.client import open_serial_client
from v2g_sim.module import PowerModuleModel
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def poll_line(chargers: int, baudrate: int, duration_s: float) -> dict[str, object]:
    options = SimulatorOptions(chargers=chargers, baudrate=baudrate, plug_in=True)
    async with SimulatorRuntime(options) as sim:
        section = PowerModuleSection(port=sim.port, baudrate=baudrate, parity="N", timeout_s=0.5)
        monitor = FrameMonitor()
        client = open_serial_client(section, monitor)
        modules = [
            SunSpecPowerModule(
                RegisterLink(client, device_id=d, timeout_s=0.5, retries=1, monitor=monitor)
            )
            for d in sorted(sim.chargers)
        ]
        try:
            for module in modules:
                await module.discover()
                await module.write_setpoint(-7000.0)
            latencies, cycles, errors = [], [], 0
            end = time.perf_counter() + duration_s
            while time.perf_counter() < end:
                cycle_start = time.perf_counter()
                for module in modules:
                    start = time.perf_counter()
                    try:
                        await module.read_measurement()
                    except PowerModuleError:
                        errors += 1
                    latencies.append(time.perf_counter() - start)
                cycles.append(time.perf_counter() - cycle_start)
        finally:
            client.close()
    return {
        "reads": len(latencies),
        "errors": errors,
        "read_ms_p50": round(statistics.median(latencies) * 1000, 3),
        "read_ms_p99": round(_percentile(latencies, 99) * 1000, 3),
        "read_ms_max": round(max(latencies) * 1000, 3),
        "line_cycle_ms_p50": round(statistics.median(cycles) * 1000, 3),
        "line_cycle_ms_max": round(max(cycles) * 1000, 3),
    }


def model_cost(chargers: int, sim_seconds: float) -> dict[str, object]:
    models = [PowerModuleModel(seed=i) for i in range(chargers)]
    for model in models:
        model.command_setpoint(-7000.0)
    start = time.process_time()
    for _ in range(round(sim_seconds / 0.02)):
        for model in models:
            model.step(0.02)
    cpu_s = time.process_time() - start
    return {"fleet_sim_s_per_cpu_s": round(sim_seconds / cpu_s, 1), "cpu_s": round(cpu_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=8)
    parser.add_argument("--baudrate", type=int, default=115200)
    parser.add_argument("--duration-s", type=float, default=3.0)
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "power_module_poll",
        "chargers": args.chargers,
        "baudrate": args.baudrate,
        "duration_s": args.duration_s,
    }
    result.update(asyncio.run(poll_line(args.chargers, args.baudrate, args.duration_s)))
    result.update(model_cost(args.chargers, sim_seconds=60.0))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
