"""OCPP 2.1 ``CentralFrequency`` periods (aFRR): the ``v2xSignalWattCurve`` that maps the
CSMS's ``AFRRSignalRequest.signal`` to watts, added to the period's ``v2xBaseline``.

OCPP 2.1 has no ``AFRRSignal`` operation mode: its enum (``OperationModeEnumType``) lists
``CentralFrequency``, the mode in which the station follows a frequency signal the CSMS
sends centrally, and ``AFRRSignalRequest`` {``timestamp``, ``signal``} picks a point on the
period's ``v2xSignalWattCurve``. A period naming any other mode is refused by the schema.

Rules checked before a profile is accepted: unit W; a ``v2xSignalWattCurve`` of 2..20 points,
signals strictly ascending, values finite (``NoSignalWattCurve`` when it is missing); no
``setpoint`` (the baseline is the setpoint); a TxProfile or TxDefaultProfile, not a cap.
``v2xBaseline`` is optional ("when present, used as a baseline", the schema says): 0 W without.
The curve is piecewise linear and held at its end values beyond its first and last points,
like the frequency-watt curve (:mod:`v2g_gateway.control.frequency`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from v2g_gateway.control.frequency import FrequencyCurveError, check_points, piecewise_value
from v2g_gateway.station.errors import ProfileRejected

__all__ = [
    "CENTRAL_FREQUENCY",
    "SignalWattCurve",
    "check_central_frequency",
    "parse_signal_curve",
    "signal_curve_to_wire",
]

CENTRAL_FREQUENCY = "CentralFrequency"
_CAP_PURPOSES = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints")


@dataclass(frozen=True, slots=True)
class SignalWattCurve:
    """Points ``(signal[i], power_w[i])``; signals (integers on the wire) strictly ascending."""

    signal: tuple[float, ...]
    power_w: tuple[float, ...]

    def __post_init__(self) -> None:
        check_points(self.signal, self.power_w, axis="signals")

    @classmethod
    def from_points(cls, points: list[tuple[float, float]]) -> SignalWattCurve:
        return cls(tuple(s for s, _ in points), tuple(p for _, p in points))

    def value_w(self, signal: float) -> float:
        """The curve's power at ``signal`` (held at the end values beyond the curve)."""
        return piecewise_value(self.signal, self.power_w, signal)


def parse_signal_curve(wire: Mapping[str, Any]) -> SignalWattCurve | None:
    """A CentralFrequency period's ``v2x_signal_watt_curve`` (snake_case adapter form), or
    ``None`` (other modes do not use it)."""
    points = wire.get("v2x_signal_watt_curve")
    if points is None or wire.get("operation_mode") != CENTRAL_FREQUENCY:
        return None
    try:
        return SignalWattCurve.from_points(
            [(_number(p, "signal"), _number(p, "power")) for p in points]
        )
    except FrequencyCurveError as exc:
        raise ProfileRejected("InvalidSchedule", f"v2xSignalWattCurve: {exc}") from None


def _number(point: Mapping[str, Any], key: str) -> float:
    value = point.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileRejected("InvalidValue", f"v2xSignalWattCurve: {key} must be a number")
    return float(value)


def check_central_frequency(
    *, purpose: str, unit: str, curve: SignalWattCurve | None, setpoint: float | None
) -> None:
    """Raise :class:`ProfileRejected` unless the station can execute this period."""
    if purpose in _CAP_PURPOSES:
        raise ProfileRejected("InvalidSchedule", f"{purpose} takes limits, not CentralFrequency")
    if unit != "W":
        raise ProfileRejected("InvalidValue", "CentralFrequency needs chargingRateUnit W")
    if curve is None:
        raise ProfileRejected("NoSignalWattCurve", "CentralFrequency needs v2xSignalWattCurve")
    if setpoint is not None:
        raise ProfileRejected("InvalidSchedule", "CentralFrequency takes v2xBaseline, not setpoint")


def signal_curve_to_wire(
    baseline_w: float, curve: SignalWattCurve, *, scale: float
) -> dict[str, Any]:
    """A composite period's CentralFrequency values in snake_case wire form."""
    return {
        "v2x_baseline": round(baseline_w * scale, 3),
        "v2x_signal_watt_curve": [
            {"signal": round(s), "power": round(p * scale, 3)}
            for s, p in zip(curve.signal, curve.power_w, strict=True)
        ],
    }
