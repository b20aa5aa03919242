"""A session's TxProfile for its share of a service (pure, snake_case keys): LocalFrequency
for the frequency products, CentralFrequency (aFRR: the station follows the core's
``AFRRSignalRequest`` through the ``v2x_signal_watt_curve``, ``vpp_core.services.afrr``).

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
from vpp_core.services.afrr import signal_watt_curve
from vpp_core.services.allocation import SessionShare
from vpp_core.services.curves import share_curve
from vpp_core.services.products import ServiceRequest

__all__ = [
    "CENTRAL_FREQUENCY",
    "LOCAL_FREQUENCY",
    "central_frequency_profile",
    "local_frequency_profile",
    "service_profile",
]

LOCAL_FREQUENCY = "LocalFrequency"
CENTRAL_FREQUENCY = "CentralFrequency"


def service_profile(
    spec: ProfileSpec, request: ServiceRequest, share: SessionShare
) -> dict[str, Any]:
    """The profile of ``share``: LocalFrequency, or CentralFrequency for aFRR."""
    if request.spec.local_frequency:
        return local_frequency_profile(spec, request, share)
    return central_frequency_profile(spec, share)


def central_frequency_profile(
    spec: ProfileSpec, share: SessionShare, *, baseline_w: float = 0.0
) -> dict[str, Any]:
    """aFRR: baseline 0 W, the share's signal-watt curve, limits bounding it to the share."""
    period = _period(spec, CENTRAL_FREQUENCY, baseline_w, share)
    period["v2x_signal_watt_curve"] = signal_watt_curve(share)
    return window_profile(spec, period)


def _period(spec: ProfileSpec, mode: str, baseline_w: float, share: SessionShare) -> dict[str, Any]:
    if spec.ocpp201 or spec.legacy_negative_limit:
        raise ValueError(f"{mode} needs an OCPP 2.1 station with operationMode")
    return {
        "start_period": 0,
        "operation_mode": mode,
        "v2x_baseline": float(baseline_w),
        "limit": float(max(baseline_w + share.charge_w, 0.0)),
        "discharge_limit": float(min(baseline_w - share.discharge_w, 0.0)),
    }


def local_frequency_profile(
    spec: ProfileSpec, request: ServiceRequest, share: SessionShare, *, baseline_w: float = 0.0
) -> dict[str, Any]:
    period = _period(spec, LOCAL_FREQUENCY, baseline_w, share)
    curve = share_curve(request, discharge_w=share.discharge_w, charge_w=share.charge_w)
    period["v2x_freq_watt_curve"] = [
        {"frequency": p.frequency_hz, "power": p.power_w} for p in curve
    ]
    return window_profile(spec, period)
