"""OCPP 2.1 ``LocalFrequency`` periods: parse the ``v2xFreqWattCurve`` and ``v2xBaseline`` of a
schedule period and check them the way the spec asks before a profile is accepted.

The station executes LocalFrequency itself: the curve and baseline travel with the setpoint
lease to the control loop, which applies them to the power module's measured grid frequency
(:mod:`v2g_gateway.control.frequency`). Rules (OCPP 2.1 K01 and the period's field notes):
the unit is W, a ``v2xBaseline`` is given, the curve has 2..20 points with the frequency
strictly ascending and every value finite; a LocalFrequency period takes no ``setpoint`` (the
baseline is the setpoint) and belongs to a TxProfile or TxDefaultProfile, not to a cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from v2g_gateway.control.frequency import FrequencyCurveError, FreqWattCurve
from v2g_gateway.station.errors import ProfileRejected

if TYPE_CHECKING:  # composite imports profiles, which imports this module
    from v2g_gateway.station.composite import CompositePeriod

__all__ = [
    "LOCAL_FREQUENCY",
    "check_local_frequency",
    "curve_discharges",
    "curve_to_wire",
    "parse_freq_curve",
    "response_bounds_w",
]

LOCAL_FREQUENCY = "LocalFrequency"
_CAP_PURPOSES = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints")


def parse_freq_curve(wire: Mapping[str, Any]) -> FreqWattCurve | None:
    """A LocalFrequency period's ``v2x_freq_watt_curve`` (snake_case adapter form), or
    ``None`` (other modes do not use it: OCPP 2.1 ignores it there)."""
    points = wire.get("v2x_freq_watt_curve")
    if points is None or wire.get("operation_mode") != LOCAL_FREQUENCY:
        return None
    try:
        pairs = [(_finite(p, "frequency"), _finite(p, "power")) for p in points]
        return FreqWattCurve.from_points(pairs)
    except FrequencyCurveError as exc:
        raise ProfileRejected("InvalidSchedule", f"v2xFreqWattCurve: {exc}") from None


def _finite(point: Mapping[str, Any], key: str) -> float:
    value = point.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileRejected("InvalidValue", f"v2xFreqWattCurve: {key} must be a number")
    return float(value)  # non-finite values are refused by the curve itself


def check_local_frequency(
    *,
    purpose: str,
    unit: str,
    baseline_w: float | None,
    curve: FreqWattCurve | None,
    setpoint: float | None,
) -> None:
    """Raise :class:`ProfileRejected` unless the station can execute this LocalFrequency
    period."""
    if purpose in _CAP_PURPOSES:
        raise ProfileRejected("InvalidSchedule", f"{purpose} takes limits, not LocalFrequency")
    if unit != "W":
        raise ProfileRejected("InvalidValue", "LocalFrequency needs chargingRateUnit W")
    if baseline_w is None:
        raise ProfileRejected("InvalidSchedule", "LocalFrequency needs v2xBaseline")
    if curve is None:
        raise ProfileRejected("InvalidSchedule", "LocalFrequency needs v2xFreqWattCurve")
    if setpoint is not None:
        raise ProfileRejected("InvalidSchedule", "LocalFrequency takes v2xBaseline, not setpoint")


def curve_to_wire(baseline_w: float, curve: FreqWattCurve, *, scale: float) -> dict[str, Any]:
    """A composite period's LocalFrequency values in snake_case wire form (GetCompositeSchedule),
    powers multiplied by ``scale`` (1 for W)."""
    return {
        "v2x_baseline": round(baseline_w * scale, 3),
        "v2x_freq_watt_curve": [
            {"frequency": f, "power": round(p * scale, 3)}
            for f, p in zip(curve.freq_hz, curve.power_w, strict=True)
        ],
    }


def curve_discharges(baseline_w: float | None, curve: FreqWattCurve | None) -> bool:
    """Whether baseline + curve asks for discharge at some frequency (the curve is piecewise
    linear and held at its ends: its minimum is one of its points)."""
    if baseline_w is None or curve is None:
        return False
    return baseline_w + min(curve.power_w) < 0


def response_bounds_w(
    period: CompositePeriod, curve: FreqWattCurve | None, *, charge_w: float, discharge_w: float
) -> tuple[float, float]:
    """(max charge, max discharge) magnitudes for the control loop: the EV's limits, and while
    it follows a ``curve`` also the period's ``limit`` / ``dischargeLimit`` (the response must
    stay within them, as a setpoint's overshoot must)."""
    if curve is None:
        return charge_w, discharge_w
    if period.limit_w is not None:
        charge_w = min(charge_w, max(period.limit_w, 0.0))
    if period.discharge_limit_w is not None:
        discharge_w = min(discharge_w, max(-period.discharge_limit_w, 0.0))
    return charge_w, discharge_w
