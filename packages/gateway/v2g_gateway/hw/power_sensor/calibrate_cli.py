"""``calibrate-sensors``: calibrate an INA228 power-sensor channel against a reference analyzer.

At two or more operating points the tool averages the sensor's raw reading while you enter
the analyzer's reading (W, positive = into the EV). It fits ``reference = gain * raw +
offset`` by least squares, shows the residuals, refuses the fit when a residual exceeds
``--tolerance-w``, and otherwise writes the calibration file atomically (timestamp, previous
values kept in the entry and the old file as ``.bak``).

Interactive:   calibrate-sensors --i2c-bus 1 --calibration-file /var/lib/v2g-gateway/cal.json
Scripted:      calibrate-sensors ... --point=-7000 --point=0 --point=7000
Simulator:     calibrate-sensors --sim-socket /tmp/v2g-sim.sock --point=-7000:-7000 ...
               (``SETPOINT:REF`` drives the simulated module to SETPOINT and waits until it
               settles before sampling; REF is what the analyzer shows.)
Exit status: 0 written, 1 sensor/simulator error, 2 usage, 3 fit refused.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from v2g_common.config import ConfigError, parse_config
from v2g_gateway.adapters import (
    AdapterError,
    OperatingPointDriver,
    i2c_bus_factory,
    operating_point_factory,
)
from v2g_gateway.devices import ControlProcessConfig, SimulatorSection
from v2g_gateway.hw.config import PowerSensorSection
from v2g_gateway.hw.errors import CalibrationError, HardwareError
from v2g_gateway.hw.power_sensor.calibration import (
    CalibrationFit,
    fit_calibration,
    save_calibration,
)
from v2g_gateway.hw.power_sensor.driver import I2cBus, Ina228

#: The adapter kind ``--sim-socket`` uses (installed with v2g-sim, see v2g_gateway.adapters).
SIMULATED = "simulated"

EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="calibrate-sensors",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--i2c-bus", type=int, help="Linux i2c bus number (/dev/i2c-N)")
    src.add_argument("--sim-socket", help="control socket of a running v2g-sim")
    p.add_argument("--device-id", type=int, default=1, help="simulated module (with --sim-socket)")
    p.add_argument("--config", type=Path, help="gateway TOML; its [power_sensor] gives defaults")
    p.add_argument("--address", type=lambda s: int(s, 0))
    p.add_argument("--channel")
    p.add_argument("--shunt-ohm", type=float)
    p.add_argument("--max-current-a", type=float)
    p.add_argument("--voltage-scale", type=float)
    p.add_argument("--calibration-file", type=Path)
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="[SETPOINT:]REF_W",
        help="scripted operating point (repeat); without any, prompt interactively",
    )
    p.add_argument("--samples", type=int, default=10, help="sensor readings averaged per point")
    p.add_argument("--tolerance-w", type=float, default=25.0, help="largest residual accepted")
    p.add_argument("--dry-run", action="store_true", help="fit and show, write nothing")
    return p.parse_args(argv)


def sensor_section(args: argparse.Namespace) -> PowerSensorSection:
    table: dict[str, Any] = {}
    if args.config is not None:
        table = dict(tomllib.loads(args.config.read_text("utf-8")).get("power_sensor", {}))
    for key in (
        "address",
        "channel",
        "shunt_ohm",
        "max_current_a",
        "voltage_scale",
        "calibration_file",
    ):
        if getattr(args, key) is not None:
            table[key] = getattr(args, key)
    return parse_config(PowerSensorSection, table, source=str(args.config or "command line"))


def parse_points(specs: list[str]) -> list[tuple[float | None, float]]:
    points = []
    for spec in specs:
        setpoint, _, ref = spec.rpartition(":")
        try:
            points.append((float(setpoint) if setpoint else None, float(ref)))
        except ValueError:
            raise SystemExit(
                f"calibrate-sensors: bad --point {spec!r} (want [SETPOINT:]REF_W)"
            ) from None
    return points


def average_raw_w(sensor: Ina228, samples: int) -> float:
    return sum(sensor.read_raw_power_w() for _ in range(samples)) / samples


def collect_scripted(
    sensor: Ina228,
    driver: OperatingPointDriver | None,
    args: argparse.Namespace,
) -> tuple[list[float], list[float]]:
    raws: list[float] = []
    refs: list[float] = []
    for setpoint, ref in parse_points(args.point):
        if setpoint is not None:
            if driver is None:
                raise SystemExit("calibrate-sensors: SETPOINT:REF needs --sim-socket")
            driver.drive_to(setpoint)
        raws.append(average_raw_w(sensor, args.samples))
        refs.append(ref)
    return raws, refs


def collect_interactive(
    sensor: Ina228, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    raws: list[float] = []
    refs: list[float] = []
    print("Set an operating point, wait until it is steady, then type the analyzer's reading")
    print("in W (positive = into the EV). An empty line finishes (two points at least).")
    while True:
        answer = input(f"point {len(raws) + 1} reference W: ").strip()
        if not answer:
            if len(raws) >= 2:
                return raws, refs
            print("need at least two points")
            continue
        try:
            ref = float(answer)
        except ValueError:
            print(f"not a number: {answer!r}")
            continue
        raw = average_raw_w(sensor, args.samples)
        print(f"  sensor raw {raw:.2f} W")
        raws.append(raw)
        refs.append(ref)


def report(fit: CalibrationFit, raws: list[float], refs: list[float]) -> None:
    print(f"{'raw W':>12} {'reference W':>12} {'fitted W':>12} {'residual W':>11}")
    for raw, ref, res in zip(raws, refs, fit.residuals_w, strict=True):
        print(f"{raw:12.2f} {ref:12.2f} {ref - res:12.2f} {res:11.3f}")
    print(
        f"gain {fit.gain:.6f}  offset {fit.offset_w:.3f} W  "
        f"max |residual| {fit.max_residual_w:.3f} W"
    )


def open_devices(
    args: argparse.Namespace, stack: contextlib.ExitStack
) -> tuple[I2cBus, OperatingPointDriver | None]:
    """The sensor's bus (``/dev/i2c-N``, or the simulator's through its adapter) and, with a
    simulator, what drives its module to a SETPOINT."""
    if not args.sim_socket:
        from smbus2 import SMBus  # only a real deployment needs the kernel's i2c-dev

        bus: I2cBus = stack.enter_context(SMBus(args.i2c_bus))
        return bus, None
    sim = SimulatorSection(socket=Path(args.sim_socket), device_id=args.device_id)
    config = ControlProcessConfig(simulator=sim)
    return (
        i2c_bus_factory(SIMULATED)(config, stack),
        operating_point_factory(SIMULATED)(config, stack),
    )


def run(args: argparse.Namespace) -> int:
    section = sensor_section(args)
    with contextlib.ExitStack() as stack:
        bus, driver = open_devices(args, stack)
        return calibrate(args, section, bus, driver)


def calibrate(
    args: argparse.Namespace,
    section: PowerSensorSection,
    bus: I2cBus,
    driver: OperatingPointDriver | None,
) -> int:
    sensor = Ina228(
        bus,
        address=section.address,
        shunt_ohm=section.shunt_ohm,
        max_current_a=section.max_current_a,
        voltage_scale=section.voltage_scale,
        adc_range_low=section.adc_range_low,
    )
    sensor.initialize()
    if args.point:
        raws, refs = collect_scripted(sensor, driver, args)
    else:
        raws, refs = collect_interactive(sensor, args)
    fit = fit_calibration(raws, refs)
    report(fit, raws, refs)
    if fit.max_residual_w > args.tolerance_w:
        print(
            f"REFUSED: residual {fit.max_residual_w:.2f} W exceeds {args.tolerance_w} W; "
            "check the reference readings and operating points. Nothing written."
        )
        return EXIT_REFUSED
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    saved = save_calibration(section.calibration_file, section.channel, fit, now=datetime.now(UTC))
    print(f"written {section.calibration_file} channel {section.channel} at {saved.calibrated_at}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"calibrate-sensors: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CalibrationError as exc:
        print(f"calibrate-sensors: REFUSED: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (HardwareError, AdapterError, OSError) as exc:
        print(f"calibrate-sensors: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
