"""The simulated EV: its battery and the V2X parameters it declares (ISO 15118-20 BPT)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from v2g_gateway.control.ports import EvChargingNeeds

__all__ = ["EvSpec", "charging_needs"]


@dataclass(frozen=True, slots=True)
class EvSpec:
    """An EV as plugged in: battery, limits (magnitudes, W) and what it asks for."""

    ev_id: str = "EV-SIM-1"
    battery_capacity_wh: float = 60_000.0
    soc_pct: float = 50.0
    min_soc_pct: float = 20.0
    max_soc_pct: float = 95.0
    max_charge_w: float = 11_000.0
    min_charge_w: float = 1_400.0
    max_discharge_w: float = 10_000.0
    min_discharge_w: float = 1_400.0
    target_soc_pct: float | None = 80.0
    departure_in_s: float | None = 8 * 3600.0
    bidirectional: bool = True

    def __post_init__(self) -> None:
        if self.battery_capacity_wh <= 0:
            raise ValueError("battery_capacity_wh must be > 0")
        if not 0 <= self.min_soc_pct <= self.soc_pct <= 100 or self.max_soc_pct > 100:
            raise ValueError("need 0 <= min_soc_pct <= soc_pct <= 100 and max_soc_pct <= 100")
        if min(self.max_charge_w, self.max_discharge_w, self.min_charge_w) < 0:
            raise ValueError("power limits are magnitudes (>= 0)")

    def with_soc(self, soc_pct: float) -> EvSpec:
        return replace(self, soc_pct=soc_pct)


def charging_needs(ev: EvSpec, *, soc_pct: float, plugged_at: datetime) -> EvChargingNeeds:
    """What the EV declares now: energies relative to the present SoC (negative = may give)."""
    cap = ev.battery_capacity_wh

    def energy_to(pct: float | None) -> float | None:
        return None if pct is None else round((pct - soc_pct) / 100.0 * cap, 1)

    departure = None
    if ev.departure_in_s is not None:
        departure = plugged_at + timedelta(seconds=ev.departure_in_s)
    return EvChargingNeeds(
        ev_id=ev.ev_id,
        battery_capacity_wh=cap,
        max_charge_w=ev.max_charge_w,
        min_charge_w=ev.min_charge_w,
        max_discharge_w=ev.max_discharge_w if ev.bidirectional else 0.0,
        min_discharge_w=ev.min_discharge_w if ev.bidirectional else 0.0,
        ev_target_energy_wh=energy_to(ev.target_soc_pct),
        ev_min_energy_wh=energy_to(ev.min_soc_pct),
        ev_max_energy_wh=energy_to(ev.max_soc_pct),
        ev_min_v2x_energy_wh=energy_to(ev.min_soc_pct) if ev.bidirectional else None,
        ev_max_v2x_energy_wh=energy_to(ev.max_soc_pct) if ev.bidirectional else None,
        target_soc_pct=ev.target_soc_pct,
        min_soc_pct=ev.min_soc_pct,
        departure=departure,
        bidirectional=ev.bidirectional,
    )
