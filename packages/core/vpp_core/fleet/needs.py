"""``NotifyEVChargingNeeds.chargingNeeds`` (snake_case) -> :class:`V2xLimits` (pure).

V2X parameters win; without them the DC/AC parameters give the charge side only (no
discharge: an EV that negotiated no BPT mode cannot discharge). ``requestedEnergyTransfer`` is
kept: a session whose mode is not bidirectional is never planned for discharge, whatever
``maxDischargePower`` it declares (``vpp_core.dispatch.eligibility``). Discharge powers stay
magnitudes (>= 0) as OCPP defines them; the sign convention applies to power, not limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vpp_core.fleet.meter import parse_timestamp
from vpp_core.fleet.model import V2xLimits

__all__ = ["limits_from_needs", "soc_from_needs"]


def _num(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else float(value)


def _v2x(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "max_charge_w": abs(_num(params, "max_charge_power") or 0.0),
        "min_charge_w": abs(_num(params, "min_charge_power") or 0.0),
        "max_discharge_w": abs(_num(params, "max_discharge_power") or 0.0),
        "min_discharge_w": abs(_num(params, "min_discharge_power") or 0.0),
        "target_soc_pct": _num(params, "target_soc"),
        "ev_min_v2x_energy_wh": _num(params, "ev_min_v2x_energy_request"),
        "ev_max_v2x_energy_wh": _num(params, "ev_max_v2x_energy_request"),
        "ev_target_energy_wh": _num(params, "ev_target_energy_request"),
        "ev_min_energy_wh": _num(params, "ev_min_energy_request"),
        "ev_max_energy_wh": _num(params, "ev_max_energy_request"),
    }


def _dc(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "max_charge_w": abs(_num(params, "ev_max_power") or 0.0),
        "ev_target_energy_wh": _num(params, "energy_amount"),
        "target_soc_pct": _num(params, "full_soc"),
    }


def limits_from_needs(needs: Mapping[str, Any], *, received_at: datetime) -> V2xLimits:
    """The limits an EV declared; raises ``ValueError``/``MeterValueError`` for bad values."""
    values: dict[str, Any] = {}
    dc = needs.get("dc_charging_parameters")
    ac = needs.get("ac_charging_parameters")
    if dc:
        values.update(_dc(dc))
        values["battery_capacity_wh"] = _num(dc, "ev_energy_capacity")
    elif ac:
        values["ev_target_energy_wh"] = _num(ac, "energy_amount")
    v2x = needs.get("v2x_charging_parameters")
    if v2x:
        values.update({k: v for k, v in _v2x(v2x).items() if v is not None or k not in values})
    departure = needs.get("departure_time")
    return V2xLimits(
        **values,
        departure=parse_timestamp(departure) if departure else None,
        control_mode=needs.get("control_mode"),
        requested_energy_transfer=needs.get("requested_energy_transfer"),
        received_at=received_at,
    )


def soc_from_needs(needs: Mapping[str, Any]) -> float | None:
    """The SoC a DC EV reports inside its charging needs, if any."""
    dc = needs.get("dc_charging_parameters") or {}
    return _num(dc, "state_of_charge")
