"""A session's LocalFrequency TxProfile for its share of a service (pure, snake_case keys).

One period over the window: ``operation_mode`` LocalFrequency, ``v2x_baseline`` (the power
the EV holds at nominal frequency; 0 W: the service only moves around it), the share's
``v2x_freq_watt_curve``, and ``limit``/``discharge_limit`` bounding the response to the share
(the station keeps the response within them, as it keeps a setpoint within its limits). The
envelope (stackLevel, validity, offline rules) is the dispatch's:
``vpp_core.dispatch.profiles.window_profile``.
"""

from __future__ import annotations

from typing import Any

from vpp_core.dispatch.profiles import ProfileSpec, window_profile
from vpp_core.services.allocation import SessionShare
from vpp_core.services.curves import share_curve
from vpp_core.services.products import ServiceRequest

__all__ = ["LOCAL_FREQUENCY", "local_frequency_profile"]

LOCAL_FREQUENCY = "LocalFrequency"


def local_frequency_profile(
    spec: ProfileSpec, request: ServiceRequest, share: SessionShare, *, baseline_w: float = 0.0
) -> dict[str, Any]:
    if spec.ocpp201 or spec.legacy_negative_limit:
        raise ValueError("LocalFrequency needs an OCPP 2.1 station with operationMode")
    curve = share_curve(request, discharge_w=share.discharge_w, charge_w=share.charge_w)
    period: dict[str, Any] = {
        "start_period": 0,
        "operation_mode": LOCAL_FREQUENCY,
        "v2x_baseline": float(baseline_w),
        "v2x_freq_watt_curve": [{"frequency": p.frequency_hz, "power": p.power_w} for p in curve],
        "limit": float(max(baseline_w + share.charge_w, 0.0)),
        "discharge_limit": float(min(baseline_w - share.discharge_w, 0.0)),
    }
    return window_profile(spec, period)
