"""``v2g-sim``: run the power-module/EV simulator, or control a running one.

v2g-sim serve [--port /dev/ttyUSB0] [--chargers 50] [--socket /tmp/v2g-sim.sock] ...
v2g-sim plug-in --socket /tmp/v2g-sim.sock --device-id 1 --soc-pct 60
v2g-sim fault --socket ... --kind ground_fault      v2g-sim clear --socket ...
v2g-sim status --socket ...
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v2g-sim", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _control_parsers(sub)
    return parser


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
    with SimControlClient(args.socket) as client:
        return client.request(args.command, **extra)


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
