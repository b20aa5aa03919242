"""Reading OCPP ``MeterValueType`` lists into one reading per timestamp (pure, no I/O).

Input is the adapter's snake_case form (``sampled_value``, ``unit_of_measure`` …). Only the
measurands the fleet tracks are read; others are ignored. Units are normalised to W, Wh and %.
Sign convention: ``power_w`` positive = into the EV, negative = out of it. OCPP's
``Power.Active.Import`` is already signed that way; a lone ``Power.Active.Export`` (a
magnitude) is turned into a negative power.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.core.fleet.errors import MeterValueError

__all__ = ["MeterReading", "parse_meter_values", "parse_timestamp"]

_DEFAULT_MEASURAND = "Energy.Active.Import.Register"
_KILO_UNITS = {"kW": "W", "kWh": "Wh", "kvarh": "varh", "kvar": "var"}
_TOTAL_PHASES = frozenset({"L1", "L2", "L3"})


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The fleet-relevant values of one ``MeterValueType`` (``None`` = not reported)."""

    timestamp: datetime
    power_w: float | None = None
    energy_import_wh: float | None = None
    energy_export_wh: float | None = None
    soc_pct: float | None = None


def parse_timestamp(text: str) -> datetime:
    """An OCPP ``dateTime`` (RFC 3339) as an aware datetime; ``Z`` accepted."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise MeterValueError(f"bad timestamp {text!r}") from exc
    if value.tzinfo is None:
        raise MeterValueError(f"timestamp {text!r} has no UTC offset")
    return value


def _scaled(sample: Mapping[str, Any]) -> tuple[float, str | None]:
    value = float(sample["value"])
    unit_info = sample.get("unit_of_measure") or {}
    unit = unit_info.get("unit")
    multiplier = int(unit_info.get("multiplier", 0))
    if unit in _KILO_UNITS:
        value *= 1000.0
        unit = _KILO_UNITS[unit]
    if multiplier:
        value *= 10.0**multiplier
    return value, unit


class _Accumulator:
    """Per-measurand totals: a phase-less value wins over a sum of phase values."""

    __slots__ = ("phased", "total")

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.phased: dict[str, float] = {}

    def add(self, sample: Mapping[str, Any]) -> None:
        measurand = sample.get("measurand") or _DEFAULT_MEASURAND
        if measurand == "SoC":
            self.total["SoC"] = float(sample["value"])
            return
        value, _unit = _scaled(sample)
        phase = sample.get("phase")
        if phase is None:
            self.total[measurand] = value
        elif phase in _TOTAL_PHASES:
            self.phased[measurand] = self.phased.get(measurand, 0.0) + value

    def get(self, measurand: str) -> float | None:
        if measurand in self.total:
            return self.total[measurand]
        return self.phased.get(measurand)


def _reading(entry: Mapping[str, Any]) -> MeterReading:
    acc = _Accumulator()
    for sample in entry.get("sampled_value") or ():
        if sample.get("location") in (None, "Outlet", "EV"):
            acc.add(sample)
    power = acc.get("Power.Active.Import")
    if power is None:
        export = acc.get("Power.Active.Export")
        power = -abs(export) if export is not None else None
    return MeterReading(
        timestamp=parse_timestamp(entry["timestamp"]),
        power_w=power,
        energy_import_wh=acc.get("Energy.Active.Import.Register"),
        energy_export_wh=acc.get("Energy.Active.Export.Register"),
        soc_pct=acc.get("SoC"),
    )


def parse_meter_values(entries: Iterable[Mapping[str, Any]] | None) -> list[MeterReading]:
    """One :class:`MeterReading` per entry, oldest first.

    Raises :class:`MeterValueError` for a value that is not a number or a bad timestamp
    (schema validation upstream makes that rare; the handler turns it into a CALLERROR).
    """
    try:
        readings = [_reading(entry) for entry in entries or ()]
    except (KeyError, TypeError, ValueError) as exc:
        raise MeterValueError(f"unreadable meter value: {exc}") from exc
    readings.sort(key=lambda r: r.timestamp)
    return readings
