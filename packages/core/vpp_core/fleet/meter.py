"""Reading OCPP ``MeterValueType`` lists into one reading per timestamp (pure, no I/O).

Input is the adapter's snake_case form (``sampled_value``, ``unit_of_measure`` …). Only the
measurands the fleet tracks are read; others are ignored. Units are normalised to W, Wh and %.
Sign convention: ``power_w`` positive = into the EV, negative = out of it. OCPP's
``Power.Active.Import`` is already signed that way; a lone ``Power.Active.Export`` (a
magnitude) is turned into a negative power.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from vpp_core.fleet.errors import MeterValueError

__all__ = ["MeterReading", "parse_meter_values", "parse_timestamp"]

_DEFAULT_MEASURAND = "Energy.Active.Import.Register"
_KILO_UNITS = {"kW": "W", "kWh": "Wh", "kvarh": "varh", "kvar": "var"}
_TOTAL_PHASES = frozenset({"L1", "L2", "L3"})


class MeterReading(NamedTuple):
    """The fleet-relevant values of one ``MeterValueType`` (``None`` = not reported).

    A tuple rather than a frozen dataclass: one is built per message on the hot path."""

    timestamp: datetime
    power_w: float | None = None
    energy_import_wh: float | None = None
    energy_export_wh: float | None = None
    soc_pct: float | None = None


def parse_timestamp(text: str) -> datetime:
    """An OCPP ``dateTime`` (RFC 3339) as an aware UTC datetime; ``Z`` accepted.

    Converted to UTC here, where a bad value is the station's error (a CALLERROR), not in
    the database writer: ``0001-01-01T00:00:00+01:00`` has no UTC equivalent."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise MeterValueError(f"bad timestamp {text!r}") from exc
    if value.tzinfo is None:
        raise MeterValueError(f"timestamp {text!r} has no UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise MeterValueError(f"timestamp {text!r} is out of range in UTC") from exc


_TRACKED = frozenset(
    {
        "Power.Active.Import",
        "Power.Active.Export",
        "Energy.Active.Import.Register",
        "Energy.Active.Export.Register",
        "SoC",
    }
)
_LOCATIONS = frozenset({"Outlet", "EV"})


def _scaled(sample: Mapping[str, Any]) -> float:
    value = float(sample["value"])
    unit_info = sample.get("unit_of_measure")
    if unit_info is None:  # the common case: W / Wh, no multiplier
        return value
    if unit_info.get("unit") in _KILO_UNITS:
        value *= 1000.0
    multiplier = int(unit_info.get("multiplier", 0))
    if not multiplier:
        return value
    scaled = value * 10.0**multiplier  # OverflowError for an absurd multiplier
    if not math.isfinite(scaled):
        raise ValueError(f"{value} x 10^{multiplier} is not a finite number")
    return scaled


def _reading(entry: Mapping[str, Any]) -> MeterReading:
    # Hot path (every TransactionEvent/MeterValues): one pass, no per-sample objects.
    total: dict[str, float] = {}
    phased: dict[str, float] = {}
    for sample in entry.get("sampled_value") or ():
        measurand = sample.get("measurand") or _DEFAULT_MEASURAND
        location = sample.get("location")
        if measurand not in _TRACKED or (location is not None and location not in _LOCATIONS):
            continue
        value = float(sample["value"]) if measurand == "SoC" else _scaled(sample)
        phase = sample.get("phase")
        if phase is None:
            total[measurand] = value
        elif phase in _TOTAL_PHASES:
            phased[measurand] = phased.get(measurand, 0.0) + value
    for measurand, value in phased.items():
        total.setdefault(measurand, value)
    power = total.get("Power.Active.Import")
    if power is None and "Power.Active.Export" in total:
        power = -abs(total["Power.Active.Export"])
    return MeterReading(
        timestamp=parse_timestamp(entry["timestamp"]),
        power_w=power,
        energy_import_wh=total.get("Energy.Active.Import.Register"),
        energy_export_wh=total.get("Energy.Active.Export.Register"),
        soc_pct=total.get("SoC"),
    )


def parse_meter_values(entries: Iterable[Mapping[str, Any]] | None) -> list[MeterReading]:
    """One :class:`MeterReading` per entry, oldest first.

    Raises :class:`MeterValueError` for a value that is not a number or a bad timestamp
    (schema validation upstream makes that rare; the handler turns it into a CALLERROR).
    """
    try:
        readings = [_reading(entry) for entry in entries or ()]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MeterValueError(f"unreadable meter value: {exc}") from exc
    readings.sort(key=lambda r: r.timestamp)
    return readings
