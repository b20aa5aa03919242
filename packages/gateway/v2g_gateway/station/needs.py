"""The EV's declared needs as a NotifyEVChargingNeeds request (snake_case), and which
energy-transfer modes a NotifyAllowedEnergyTransfer leaves for discharging. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from v2g_common.energy_transfer import BIDIRECTIONAL_MODES, any_bidirectional
from v2g_gateway.control.ports import EvChargingNeeds

__all__ = ["BIDIRECTIONAL_MODES", "allows_discharge", "charging_needs_request"]


def charging_needs_request(
    needs: EvChargingNeeds,
    *,
    evse_id: int,
    now: datetime,
    current_type: str,
    discharge_allowed: bool = True,
) -> dict[str, Any]:
    """Keyword arguments of ``call.NotifyEVChargingNeeds`` for ``needs``.

    ``current_type`` is ``"AC"`` or ``"DC"``; a bidirectional EV requests the BPT mode and
    offers the unidirectional one as the alternative. ``discharge_allowed`` False (the CSMS's
    NotifyAllowedEnergyTransfer named no BPT mode) renegotiates without BPT: the EV requests
    the unidirectional mode and declares no discharge power.
    """
    plain = "DC" if current_type == "DC" else "AC_three_phase"
    bpt = "DC_BPT" if current_type == "DC" else "AC_BPT"
    bidirectional = needs.bidirectional and discharge_allowed
    requested = bpt if bidirectional else plain
    available = [bpt, plain] if bidirectional else [plain]
    charging_needs: dict[str, Any] = {
        "requested_energy_transfer": requested,
        "available_energy_transfer": available,
        "control_mode": "DynamicControl",
        "mobility_needs_mode": "EVCC",
        "v2x_charging_parameters": _v2x_parameters(needs, bidirectional=bidirectional),
    }
    if needs.departure is not None:
        charging_needs["departure_time"] = needs.departure.isoformat()
    return {
        "evse_id": evse_id,
        "timestamp": now.isoformat(),
        "charging_needs": charging_needs,
    }


def _v2x_parameters(needs: EvChargingNeeds, *, bidirectional: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "min_charge_power": needs.min_charge_w,
        "max_charge_power": needs.max_charge_w,
    }
    if bidirectional:
        params["min_discharge_power"] = needs.min_discharge_w
        params["max_discharge_power"] = needs.max_discharge_w
    optional = {
        "ev_target_energy_request": needs.ev_target_energy_wh,
        "ev_min_energy_request": needs.ev_min_energy_wh,
        "ev_max_energy_request": needs.ev_max_energy_wh,
    }
    if bidirectional:
        optional["ev_min_v2x_energy_request"] = needs.ev_min_v2x_energy_wh
        optional["ev_max_v2x_energy_request"] = needs.ev_max_v2x_energy_wh
    params.update({k: v for k, v in optional.items() if v is not None})
    if needs.target_soc_pct is not None:
        params["target_soc"] = round(needs.target_soc_pct)
    return params


def allows_discharge(allowed_modes: Iterable[str]) -> bool:
    """Whether a NotifyAllowedEnergyTransfer list permits a bidirectional mode."""
    return any_bidirectional(allowed_modes)
