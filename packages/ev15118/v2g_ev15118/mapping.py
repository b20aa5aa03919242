"""ISO 15118 <-> OCPP 2.1 numbers, both ways, in one place (the table: docs/iso15118.md).

EV -> station: :func:`needs_fields` turns the EV's declared parameters (:class:`EvParams`)
into the fields of the gateway's ``EvChargingNeeds``, which the station reports as
NotifyEVChargingNeeds; :func:`soc_pct` is the SoC the station meters.
Station -> EV: :func:`evse_target_w` bounds the setpoint in force by the EV's limits and the
station's (control law, CSMS, NotifyAllowedEnergyTransfer); :func:`dc_dynamic_limits` and
:func:`ac_dynamic_target_w` express it as the -20 Dynamic-mode EVSE values of the charge loop.

Standard library only: the gateway and the SECC process (different virtualenvs) both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g_ev15118.wire import EvParams, EvPresent, EvseOffer

__all__ = [
    "BIDIRECTIONAL_SERVICES",
    "DcDynamicLimits",
    "ac_dynamic_target_w",
    "bidirectional",
    "charge_only_reason",
    "dc_dynamic_limits",
    "evse_target_w",
    "needs_fields",
    "soc_pct",
]

#: -20 energy services with bidirectional power transfer.
BIDIRECTIONAL_SERVICES = frozenset({"DC_BPT", "AC_BPT"})


def bidirectional(ev: EvParams) -> bool:
    """Only an ISO 15118-20 session with a BPT service may discharge (DIN SPEC 70121 and
    ISO 15118-2 have no discharge at all)."""
    return charge_only_reason(ev) is None


def charge_only_reason(ev: EvParams) -> str | None:
    """Why this EV's session is charge-only, or None when it may discharge."""
    if not ev.protocol.startswith("ISO_15118_20"):
        return f"{ev.protocol} has no bidirectional power transfer (ISO 15118-20 BPT needed)"
    if ev.service not in BIDIRECTIONAL_SERVICES:
        return f"the EV selected the {ev.service} service, not DC_BPT or AC_BPT"
    if ev.max_discharge_w <= 0:
        return "the EV declared no discharge power"
    return None


def needs_fields(ev: EvParams, *, now: datetime) -> dict[str, Any]:
    """The ``EvChargingNeeds`` fields of ``ev`` (energies in Wh, powers as magnitudes in W);
    a charge-only session declares no discharge power and no V2X energies."""
    two_way = bidirectional(ev)
    departure = None if ev.departure_in_s is None else now + timedelta(seconds=ev.departure_in_s)
    return {
        "ev_id": ev.evcc_id,
        "battery_capacity_wh": ev.battery_capacity_wh or 0.0,
        "max_charge_w": ev.max_charge_w,
        "min_charge_w": ev.min_charge_w,
        "max_discharge_w": ev.max_discharge_w if two_way else 0.0,
        "min_discharge_w": ev.min_discharge_w if two_way else 0.0,
        "ev_target_energy_wh": ev.target_energy_wh,
        "ev_min_energy_wh": ev.min_energy_wh,
        "ev_max_energy_wh": ev.max_energy_wh,
        "ev_min_v2x_energy_wh": ev.min_v2x_energy_wh if two_way else None,
        "ev_max_v2x_energy_wh": ev.max_v2x_energy_wh if two_way else None,
        "target_soc_pct": ev.target_soc_pct,
        "min_soc_pct": ev.min_soc_pct,
        "departure": departure,
        "bidirectional": two_way,
    }


def soc_pct(present: EvPresent | None, ev: EvParams | None) -> float | None:
    """The EV's own SoC: its last charge-loop value, else what it declared at the start."""
    if present is not None and present.soc_pct is not None:
        return present.soc_pct
    return None if ev is None else ev.present_soc_pct


def evse_target_w(offer: EvseOffer, ev: EvParams) -> float:
    """The signed power the EVSE targets next: the setpoint in force, within the station's
    bounds and the EV's declared limits; 0 on stop; never a discharge for a charge-only EV."""
    if offer.stop:
        return 0.0
    if offer.target_w >= 0:
        return min(offer.target_w, offer.max_charge_w, ev.max_charge_w)
    if not bidirectional(ev):
        return 0.0
    return -min(-offer.target_w, offer.max_discharge_w, ev.max_discharge_w)


@dataclass(frozen=True, slots=True)
class DcDynamicLimits:
    """The EVSE values of a -20 DC (BPT) Dynamic-mode charge-loop response: the power window
    collapsed on the target, so the EV knows exactly what the EVSE delivers or draws."""

    max_charge_w: float
    min_charge_w: float
    max_discharge_w: float
    min_discharge_w: float
    max_charge_a: float
    max_discharge_a: float


def dc_dynamic_limits(offer: EvseOffer, ev: EvParams, *, voltage_v: float) -> DcDynamicLimits:
    """DC Dynamic mode: charging at P gives [0, P] charge, no discharge; discharging at P
    gives no charge and [P, P] discharge (the EVSE's minimum discharge holds it there)."""
    target_w = evse_target_w(offer, ev)
    charge_w, discharge_w = max(target_w, 0.0), max(-target_w, 0.0)
    volts = max(voltage_v, 1.0)
    return DcDynamicLimits(
        max_charge_w=charge_w,
        min_charge_w=0.0,
        max_discharge_w=discharge_w,
        min_discharge_w=discharge_w,
        max_charge_a=charge_w / volts,
        max_discharge_a=discharge_w / volts,
    )


def ac_dynamic_target_w(offer: EvseOffer, ev: EvParams) -> float:
    """AC (BPT) Dynamic mode: EVSETargetActivePower is the signed target itself."""
    return evse_target_w(offer, ev)
