"""Frequency products and service requests (pure domain values, checked when built).

Defaults from the grid codes (docs/frequency-services.md cites them); a request may override
the curve parameters. Capacity is a magnitude per direction: ``discharge`` is the response to
an under-frequency (the EV feeds the grid, power < 0), ``charge`` to an over-frequency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from vpp_core.services.errors import InvalidServiceError

__all__ = [
    "PRODUCTS",
    "CurveShape",
    "Product",
    "ProductSpec",
    "ServiceDirection",
    "ServiceRequest",
]

#: ``symmetric``: the same capacity both ways; ``discharge``/``charge``: one direction only.
ServiceDirection = Literal["symmetric", "discharge", "charge"]
#: How the grid code draws the response outside the dead-band (``vpp_core.services.curves``):
#: ``droop`` proportional to the deviation from nominal (FCR: 50 % at 100 of 200 mHz, the
#: dead-band only silences the middle); ``from_deadband`` rising from 0 at the dead-band's
#: edge (GB Dynamic Containment, through its knee); ``step`` full at once past the activation
#: level (Nordic FFR, a trigger product; ``full_activation_mhz`` is then not on the curve).
#: The resolution of a curve's frequencies (``vpp_core.services.curves``): 0.1 mHz.
CURVE_RESOLUTION_MHZ = 0.1
CurveShape = Literal["droop", "from_deadband", "step"]


class Product(StrEnum):
    FCR = "fcr"
    FFR = "ffr"
    DYNAMIC_CONTAINMENT = "dynamic_containment"
    AFRR = "afrr"


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """A product's grid-code defaults. The curve is 0 W within ``deadband_mhz`` of nominal and
    reaches full capacity at ``full_activation_mhz`` in the product's ``shape``; a ``knee``
    (mHz, share of capacity) makes it two-segment (GB Dynamic Containment: 5 % at 200 mHz)."""

    deadband_mhz: float
    full_activation_mhz: float
    endurance_s: float
    full_activation_s: float
    default_direction: ServiceDirection
    knee: tuple[float, float] | None = None
    #: False for aFRR: driven by the operator's setpoint stream relayed as AFRRSignal
    #: (CentralFrequency profiles, ``vpp_core.services.afrr``), not by frequency.
    local_frequency: bool = True
    shape: CurveShape = "droop"


PRODUCTS: dict[Product, ProductSpec] = {
    # ENTSO-E SOGL Art. 154 + Annex V (CE): full at +/-200 mHz within 30 s, insensitivity
    # 10 mHz; LER endurance 15 min (SOGL Art. 156(9), FCR Cooperation). Activation is linear
    # in the deviation from 50.0 Hz; inside 49.99-50.01 Hz nothing need be delivered
    # (regelleistung.net, "Activation of FCR"): a droop through nominal, not from the edge.
    Product.FCR: ProductSpec(10.0, 200.0, 15 * 60.0, 30.0, "symmetric"),
    # Nordic FFR (Fingrid technical requirements): a trigger product, "activated in full
    # within the required time when the frequency falls below" the activation level
    # (49.7/49.6/49.5 Hz: 1.3/1.0/0.7 s), support 30 s (the long-support variant): a step.
    Product.FFR: ProductSpec(300.0, 500.0, 30.0, 1.3, "discharge", shape="step"),
    # GB Dynamic Containment (NESO service terms): 0 % at the +/-15 mHz dead-band's edge,
    # 5 % at 200 mHz, 100 % at 500 mHz, full within 1 s, 15 min of energy.
    Product.DYNAMIC_CONTAINMENT: ProductSpec(
        15.0, 500.0, 15 * 60.0, 1.0, "symmetric", (200.0, 0.05), shape="from_deadband"
    ),
    # PICASSO aFRR: full activation time 5 min, driven by the TSO's signal, not frequency.
    Product.AFRR: ProductSpec(0.0, 200.0, 15 * 60.0, 300.0, "symmetric", local_frequency=False),
}


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """What a grid operator asked for: ``capacity_w`` (> 0, per direction held) over
    [start, start + duration_s], with the product's curve unless overridden."""

    product: Product
    capacity_w: float
    direction: ServiceDirection
    start: datetime
    duration_s: float
    deadband_mhz: float
    full_activation_mhz: float
    nominal_hz: float = 50.0
    headroom: float = 0.9

    def __post_init__(self) -> None:
        reasons = _problems(self)
        if reasons:
            raise InvalidServiceError(reasons)

    @classmethod
    def of(
        cls,
        product: Product,
        *,
        capacity_w: float,
        start: datetime,
        duration_s: float,
        direction: ServiceDirection | None = None,
        deadband_mhz: float | None = None,
        full_activation_mhz: float | None = None,
        **kw: float,
    ) -> ServiceRequest:
        """A request with the product's defaults for what is not given."""
        spec = PRODUCTS[product]
        return cls(
            product=product,
            capacity_w=capacity_w,
            direction=direction or spec.default_direction,
            start=start,
            duration_s=duration_s,
            deadband_mhz=spec.deadband_mhz if deadband_mhz is None else deadband_mhz,
            full_activation_mhz=(
                spec.full_activation_mhz if full_activation_mhz is None else full_activation_mhz
            ),
            **kw,
        )

    @property
    def spec(self) -> ProductSpec:
        return PRODUCTS[self.product]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def discharge_w(self) -> float:
        """Capacity held for under-frequency (magnitude)."""
        return self.capacity_w if self.direction != "charge" else 0.0

    @property
    def charge_w(self) -> float:
        """Capacity held for over-frequency (magnitude)."""
        return self.capacity_w if self.direction != "discharge" else 0.0


def _problems(r: ServiceRequest) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not (math.isfinite(r.capacity_w) and r.capacity_w > 0):
        out.append(("capacity_mw", "must be finite and > 0"))
    if not (math.isfinite(r.duration_s) and r.duration_s > 0):
        out.append(("duration_s", "must be > 0"))
    if r.start.tzinfo is None:
        out.append(("start", "must be timezone-aware"))
    if not (math.isfinite(r.deadband_mhz) and r.deadband_mhz >= 0):
        out.append(("deadband_mhz", "must be >= 0"))
    # two curve points must fit between them: the curve's frequencies are 0.1 mHz apart at least
    gap = 2 * CURVE_RESOLUTION_MHZ
    knee = r.spec.knee[0] if r.spec.knee else r.deadband_mhz
    inner = max(knee, r.deadband_mhz)
    if not (math.isfinite(r.full_activation_mhz) and r.full_activation_mhz >= inner + gap):
        why = f"must exceed the dead-band and knee ({inner:g} mHz) by {gap:g} mHz"
        out.append(("full_activation_mhz", why))
    elif r.full_activation_mhz > 5000:
        out.append(("full_activation_mhz", "must be <= 5000 mHz"))
    if r.spec.knee and not r.deadband_mhz <= r.spec.knee[0] - gap:
        out.append(
            ("deadband_mhz", f"must be {gap:g} below the product's knee ({r.spec.knee[0]:g} mHz)")
        )
    if r.nominal_hz not in (50.0, 60.0):
        out.append(("nominal_hz", "must be 50 or 60"))
    if not 0 < r.headroom <= 1:
        out.append(("headroom", "must be in (0, 1]"))
    return out
