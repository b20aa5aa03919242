"""A session's frequency-watt curve for its share of a service (pure).

OCPP 2.1 ``v2xFreqWattCurve``: 2-20 points, Hz strictly ascending, W signed (positive =
charge); the station holds the curve flat beyond its ends and interpolates linearly between
points, on top of ``v2xBaseline``. Below nominal the EV discharges (up to its discharge
share at ``nominal - full_activation``), above it charges; inside the dead-band the points are
0 W. A one-direction service's curve stops at the dead-band's edge on the other side, so it is
0 W there (held flat).

Outside the dead-band the product's grid code draws it (``ProductSpec.shape``): FCR is a
droop through nominal (50 % at 100 of 200 mHz), so the curve steps from 0 W at the
dead-band's edge to the droop's value 0.1 mHz further (the resolution of the curve's
frequencies) and follows the droop from there; Dynamic Containment rises from 0 at the edge
(through its knee); FFR is full 0.1 mHz past its activation level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vpp_core.services.products import CURVE_RESOLUTION_MHZ, ServiceRequest

__all__ = ["CurvePoint", "share_curve"]

_HZ_DECIMALS = 4  # 0.1 mHz: the curve's frequencies are exact, not 49.800000000001
_STEP_MHZ = CURVE_RESOLUTION_MHZ  # a step in the curve: two points this far apart


def _outward(mhz: float) -> float:
    """The dead-band's edge on the curve's grid, rounded outward (a 1.75 mHz dead-band has its
    0 W edge at 1.8 mHz: rounded inward, or to nearest, the step's two points fell on one
    frequency and the curve never left 0 W)."""
    return math.ceil(mhz / CURVE_RESOLUTION_MHZ - 1e-6) * CURVE_RESOLUTION_MHZ


@dataclass(frozen=True, slots=True)
class CurvePoint:
    frequency_hz: float
    power_w: float


def _side(request: ServiceRequest, share_w: float, sign: float) -> list[tuple[float, float]]:
    """(offset mHz, W) from the dead-band's edge out to full activation, one direction."""
    edge, full = _outward(request.deadband_mhz), request.full_activation_mhz
    out = [(edge, 0.0)]
    shape = request.spec.shape
    if shape == "step":
        return [*out, (edge + _STEP_MHZ, sign * share_w)]
    if shape == "droop" and edge > 0 and edge + 2 * _STEP_MHZ <= full:
        out.append((edge + _STEP_MHZ, sign * share_w * (edge + _STEP_MHZ) / full))
    knee = request.spec.knee
    if knee is not None:
        out.append((knee[0], sign * knee[1] * share_w))
    out.append((full, sign * share_w))
    return out


def share_curve(
    request: ServiceRequest, *, discharge_w: float, charge_w: float
) -> list[CurvePoint]:
    """The curve for one session holding ``discharge_w``/``charge_w`` (magnitudes >= 0, at
    least one > 0); ascending frequency, no duplicate frequency."""
    if discharge_w < 0 or charge_w < 0 or discharge_w + charge_w <= 0:
        raise ValueError("a share needs discharge_w or charge_w > 0 and neither negative")
    nominal_mhz = request.nominal_hz * 1000.0
    points: dict[float, float] = {}
    if discharge_w > 0:
        for off, w in reversed(_side(request, discharge_w, -1.0)):
            points[round((nominal_mhz - off) / 1000.0, _HZ_DECIMALS)] = w
    if charge_w > 0:
        for off, w in _side(request, charge_w, 1.0):
            points.setdefault(round((nominal_mhz + off) / 1000.0, _HZ_DECIMALS), w)
    return [CurvePoint(f, round(w, 1)) for f, w in sorted(points.items())]
