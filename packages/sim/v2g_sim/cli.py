"""``v2g-sim``: run the power-module/EV simulator, or control a running one.

v2g-sim serve [--port /dev/ttyUSB0] [--chargers 50] [--socket /tmp/v2g-sim.sock] ...
v2g-sim plug-in --socket /tmp/v2g-sim.sock --device-id 1 --soc-pct 60
v2g-sim fault --socket ... --kind ground_fault      v2g-sim clear --socket ...
v2g-sim status --socket ...
v2g-sim grid --socket ... --freq-hz 49.5 [--ramp-s 2]   (or --trace trace.csv, --noise-hz)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from v2g_sim.control import ControlError, SimControlClient
from v2g_sim.grid_frequency import GridFrequency, parse_trace_csv
from v2g_sim.module import FAULT_KINDS
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

__all__ = ["build_parser", "main"]

DEFAULT_SOCKET = "/tmp/v2g-sim.sock"


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve simulated modules over Modbus RTU")
    p.add_argument("--port", help="serial device to serve on (default: create a pty pair)")
    p.add_argument("--chargers", type=int, default=1, help="simulated modules on the line")
    p.add_argument("--first-device-id", type=int, default=1)
    p.add_argument("--baudrate", type=int, default=19200)
    p.add_argument("--parity", choices="NEO", default="E", help="ignored (N) on a pty")
    p.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-scale", type=float, default=1.0, help="sim seconds per real second")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="control socket path")
    p.add_argument("--plug-in", action="store_true", help="start with an EV plugged in")
    p.add_argument("--sensor-gain-error", type=float, default=0.0)
    p.add_argument("--sensor-offset-error-w", type=float, default=0.0)
    p.add_argument("--grid-nominal-hz", type=float, default=50.0, help="the site's grid")
    p.add_argument("--grid-noise-hz", type=float, default=0.0, help="Gaussian noise (std)")
    p.add_argument("--grid-trace", type=Path, help="replay a t_s,freq_hz CSV from the start")


def _control_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", default=DEFAULT_SOCKET, help="control socket path")
    common.add_argument("--device-id", type=int, help="module (default: the first)")
    plug = sub.add_parser("plug-in", parents=[common], help="plug an EV in")
    for name, kind in (
        ("ev-id", str),
        ("soc-pct", float),
        ("battery-capacity-wh", float),
        ("min-soc-pct", float),
        ("max-soc-pct", float),
        ("target-soc-pct", float),
        ("max-charge-w", float),
        ("max-discharge-w", float),
        ("departure-in-s", float),
    ):
        plug.add_argument(f"--{name}", type=kind)
    sub.add_parser("plug-out", parents=[common], help="unplug the EV")
    fault = sub.add_parser("fault", parents=[common], help="inject a fault")
    fault.add_argument("--kind", choices=FAULT_KINDS, required=True)
    clear = sub.add_parser("clear", parents=[common], help="clear one fault or all")
    clear.add_argument("--kind", choices=FAULT_KINDS)
    sub.add_parser("status", parents=[common], help="print the simulator state as JSON")
    sub.add_parser("ev-needs", parents=[common], help="print the EV's declared V2X needs")
    contactor = sub.add_parser("contactor", parents=[common], help="open or close the contactor")
    contactor.add_argument("state", choices=("open", "close"))
    sensor = sub.add_parser("sensor-error", parents=[common], help="set the INA228 error")
    sensor.add_argument("--gain-error", type=float)
    sensor.add_argument("--offset-error-w", type=float)
    grid = sub.add_parser("grid", parents=[common], help="the site's grid frequency from now")
    grid.add_argument("--freq-hz", type=float, help="step (or ramp) to this frequency")
    grid.add_argument("--ramp-s", type=float, help="ramp over this long instead of a step")
    grid.add_argument("--trace", type=Path, help="replay a t_s,freq_hz CSV from now")
    grid.add_argument("--noise-hz", type=float, help="Gaussian noise (std) from now")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v2g-sim", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _control_parsers(sub)
    return parser


def _site_grid(args: argparse.Namespace) -> GridFrequency | None:
    if args.grid_trace is None and args.grid_noise_hz == 0.0 and args.grid_nominal_hz == 50.0:
        return None  # the model's own slow random walk around 50 Hz
    grid = GridFrequency(nominal_hz=args.grid_nominal_hz, noise_hz=args.grid_noise_hz)
    if args.grid_trace is not None:
        grid = grid.replay(parse_trace_csv(args.grid_trace.read_text()), at_s=0.0)
    return grid


async def _serve(args: argparse.Namespace) -> None:
    options = SimulatorOptions(
        chargers=args.chargers,
        first_device_id=args.first_device_id,
        seed=args.seed,
        port=args.port,
        baudrate=args.baudrate,
        parity=args.parity,
        stopbits=args.stopbits,
        socket_path=Path(args.socket),
        time_scale=args.time_scale,
        plug_in=args.plug_in,
        sensor_gain_error=args.sensor_gain_error,
        sensor_offset_error_w=args.sensor_offset_error_w,
        grid=_site_grid(args),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimulatorRuntime(options) as sim:
        ids = sorted(sim.chargers)
        print(f"tty: {sim.port}", flush=True)
        print(f"device ids: {ids[0]}..{ids[-1]}  control socket: {args.socket}", flush=True)
        await stop.wait()


def _control_request(args: argparse.Namespace) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if args.device_id is not None:
        extra["device_id"] = args.device_id
    if args.command == "plug-in":
        keys = (
            "ev_id",
            "soc_pct",
            "battery_capacity_wh",
            "min_soc_pct",
            "max_soc_pct",
            "target_soc_pct",
            "max_charge_w",
            "max_discharge_w",
            "departure_in_s",
        )
        extra["ev"] = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    elif args.command in ("fault", "clear") and args.kind is not None:
        extra["kind"] = args.kind
    elif args.command == "contactor":
        extra["closed"] = args.state == "close"
    elif args.command == "sensor-error":
        for key in ("gain_error", "offset_error_w"):
            if getattr(args, key) is not None:
                extra[key] = getattr(args, key)
    elif args.command == "grid":
        extra.update(_grid_request(args))
    with SimControlClient(args.socket) as client:
        return client.request(args.command, **extra)


def _grid_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = {}
    if args.trace is not None:
        request["trace"] = parse_trace_csv(args.trace.read_text())
    elif args.freq_hz is not None:
        request["freq_hz"] = args.freq_hz
        if args.ramp_s is not None:
            request["ramp_s"] = args.ramp_s
    if args.noise_hz is not None:
        request["noise_hz"] = args.noise_hz
    return request


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
        return 0
    try:
        response = _control_request(args)
    except (ControlError, OSError) as exc:
        print(f"v2g-sim: {exc}", file=sys.stderr)
        return 1
    response.pop("ok", None)
    print(json.dumps(response, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
