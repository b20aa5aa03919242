"""aFRR (PICASSO) as the core holds it: each session's ``v2xSignalWattCurve`` and the
operator's setpoints turned into the one signal every station gets (pure).

The operator's setpoint stream (one every ~4 s) asks the fleet for a signed power (W,
negative = discharge, the EV feeds the grid: upward regulation). Every session holding a
share gets the same curve shape, its share at the ends: signal ``-SIGNAL_FULL`` = its whole
discharge share, ``0`` = nothing, ``+SIGNAL_FULL`` = its whole charge share. So one signal,
``SIGNAL_FULL`` x requested / fleet capacity held in that direction, moves every session by
the same fraction of its share and the fleet by the requested power. A setpoint beyond what
the fleet holds (drop-outs) is sent at full signal: the fleet delivers what it holds, and the
record says so; one beyond the contracted capacity is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from vpp_core.services.allocation import SessionShare
from vpp_core.services.errors import InvalidServiceError
from vpp_core.services.products import ServiceRequest

__all__ = [
    "SIGNAL_FULL",
    "AfrrSetpoint",
    "afrr_signal",
    "check_setpoint",
    "signal_watt_curve",
]

#: The signal of a full activation: 0.01 % steps (100 W on a 1 MW service).
SIGNAL_FULL = 10_000


@dataclass
class AfrrSetpoint:
    """One operator setpoint and what came of it. ``requested_w`` signed (negative =
    discharge); ``delivered_w``: the holding sessions' metered power when the setpoint was
    superseded (or the service ended), None while it is in force; ``stale``: not the
    operator's but the core's own signal 0 after the stream stopped."""

    at: datetime
    requested_w: float
    signal: int
    stations: int
    accepted: int
    delivered_w: float | None = None
    stale: bool = False


def signal_watt_curve(share: SessionShare) -> list[dict[str, float]]:
    """A session's ``v2x_signal_watt_curve``: its discharge share at ``-SIGNAL_FULL``, 0 W at
    0, its charge share at ``+SIGNAL_FULL`` (0 W on a side it does not hold)."""
    return [
        {"signal": -SIGNAL_FULL, "power": -round(share.discharge_w, 1)},
        {"signal": 0, "power": 0.0},
        {"signal": SIGNAL_FULL, "power": round(share.charge_w, 1)},
    ]


def check_setpoint(request: ServiceRequest, requested_w: float) -> None:
    """Raise :class:`InvalidServiceError` unless the contract covers ``requested_w``."""
    held_w = request.discharge_w if requested_w < 0 else request.charge_w
    if not math.isfinite(requested_w) or abs(requested_w) > held_w * (1 + 1e-9):
        side = "discharge" if requested_w < 0 else "charge"
        raise InvalidServiceError(
            [
                (
                    "power_mw",
                    f"{abs(requested_w) / 1e6:g} MW {side} exceeds the service's "
                    f"{held_w / 1e6:g} MW in that direction",
                )
            ]
        )


def afrr_signal(requested_w: float, holding: Sequence[SessionShare]) -> int:
    """The signal that asks ``holding`` for ``requested_w`` in all (clipped at full)."""
    if requested_w == 0:
        return 0
    if requested_w < 0:
        held_w = sum(s.discharge_w for s in holding)
    else:
        held_w = sum(s.charge_w for s in holding)
    if held_w <= 0:
        return SIGNAL_FULL if requested_w > 0 else -SIGNAL_FULL
    fraction = min(abs(requested_w) / held_w, 1.0)
    return round(math.copysign(fraction * SIGNAL_FULL, requested_w))
