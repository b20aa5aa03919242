"""``vpp-demo``'s command line, validated before anything starts: a bad value is an argparse
error naming the flag and echoing the value (exit 2), never a traceback or a stack started
to fail 14 s later. Bounds come from where they are enforced: the dispatch API's request model
(power, duration), the gateway's control section (loop period), Modbus (device ids per bus).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from v2g_gateway.control.config import ControlSection
from vpp_core.api.schemas import DispatchCreate

__all__ = ["build_parser", "parse_args"]

#: Modbus RTU device ids 1..247: one fleet host serves its stations on one simulated bus.
MAX_PER_HOST = 247


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _checked(convert: Callable[[str], Any], test: Callable[[Any], bool], rule: str) -> Any:
    """An argparse ``type``: ``convert`` the text, then ``test`` it; the error says ``rule``
    (argparse prefixes the flag and we echo the value)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule}")
        return value

    parse.__name__ = rule  # argparse names the type in some messages
    return parse


def _bounds(model: type[BaseModel], name: str) -> TypeAdapter[float]:
    """A validator of a float with the constraints of ``model``'s field ``name``."""
    return TypeAdapter(Annotated[float, *model.model_fields[name].metadata])


def _field(model: type[BaseModel], name: str, *, scale: float = 1.0) -> Any:
    """An argparse ``type`` checking a float against ``model``'s field ``name`` (the value
    times ``scale``), with pydantic's own words for the bound."""
    adapter = _bounds(model, name)

    def parse(text: str) -> float:
        try:
            value = _finite(text)
            adapter.validate_python(value * scale)
        except ValueError as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise argparse.ArgumentTypeError(f"{text!r}: {reason}") from None
        return value

    return parse


def _directory(text: str) -> Path:
    """A directory to write in: there already, or creatable (its nearest existing ancestor a
    writable directory) -- found out now, not after the run when the report is saved."""
    path = Path(text)
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: {existing} is not writable")
    return path


def build_parser(description: str | None) -> argparse.ArgumentParser:
    head, _, tail = (description or "").partition("\n\n")
    parser = argparse.ArgumentParser(
        prog="vpp-demo",
        description=head or None,
        epilog=tail or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p = parser.add_argument
    positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
    positive = _checked(_finite, lambda v: v > 0, "a number > 0")
    p("--stations", type=positive_int, default=50, help="simulated chargers (default 50)")
    p(
        "--speed",
        type=positive,
        default=10.0,
        help="time compression S: durations and battery capacities divided by S "
        "(default 10: the 15-minute window takes 90 s)",
    )
    p("--window-min", type=positive, default=15.0, help="dispatch window, scenario minutes")
    p(
        "--power-mw",
        type=_field(DispatchCreate, "power_mw"),
        help="requested discharge, MW (default 4 kW per station)",
    )
    p(
        "--unplug-share",
        type=_checked(_finite, lambda v: 0.0 <= v <= 1.0, "a share from 0 to 1"),
        default=0.1,
        help="share of vehicles leaving mid-window (0.1; 0 = none)",
    )
    p("--seed", type=int, default=1, help="scenario random seed")
    p(
        "--per-host",
        type=_checked(int, lambda v: 1 <= v <= MAX_PER_HOST, f"an integer 1..{MAX_PER_HOST}"),
        default=25,
        help="gateways per fleet-host process (25)",
    )
    p(
        "--control-period-s",
        type=_field(ControlSection, "period_s"),
        default=0.1,
        help="control loop period (0.1 = 10 Hz)",
    )
    p("--output", type=_directory, help="report directory (default demo-output/<UTC time>)")
    p("--state-dir", type=_directory, help="keep PKI, databases and logs here (default: temp)")
    p("--plain", action="store_true", help="plain progress lines even on a terminal")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, then the checks that need two flags: the real window (minutes / speed) must be
    a duration the dispatch API accepts."""
    args = parser.parse_args(argv)
    window_s = args.window_min * 60.0 / args.speed
    try:
        _bounds(DispatchCreate, "duration_s").validate_python(window_s)
    except ValidationError as exc:
        parser.error(
            f"argument --window-min/--speed: {args.window_min:g} min at speed {args.speed:g} "
            f"is a {window_s:g} s window: {exc.errors()[0]['msg']}"
        )
    return args
