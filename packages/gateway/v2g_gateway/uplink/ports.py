"""What the uplink needs from the rest of the gateway: the state of each charger it covers.

The daemon wires one adapter per charger (over ``ControlChannel.snapshot()`` and the station's
sessions); a regional collector wires one per charger of its region. Sign convention: power
positive into the EV, negative out; ``available_*_w`` are magnitudes (>= 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ChargerState", "ChargerStateSource"]


@dataclass(frozen=True, slots=True)
class ChargerState:
    """One charger (controller) right now.

    ``available_discharge_w``/``available_charge_w``: what the connected sessions could deliver
    / absorb now, within the EVs' V2X limits and the charger's ratings. ``soc_pct``: one value
    per connected EV that reports a SoC. ``fail_safe``: the charger is in its comms-loss /
    trip state and will not follow setpoints; ``trip_code`` says why, when known.
    """

    charger_id: str
    sessions_connected: int
    v2x_sessions: int
    available_discharge_w: float
    available_charge_w: float
    power_w: float
    soc_pct: tuple[float, ...]
    energy_import_wh: float
    energy_export_wh: float
    fail_safe: bool
    trip_code: str | None = None

    def __post_init__(self) -> None:
        if self.sessions_connected < 0 or not 0 <= self.v2x_sessions <= self.sessions_connected:
            raise ValueError(f"{self.charger_id}: bad session counts")
        magnitudes = (
            self.available_discharge_w,
            self.available_charge_w,
            self.energy_import_wh,
            self.energy_export_wh,
        )
        if any(not math.isfinite(v) or v < 0 for v in magnitudes):
            raise ValueError(f"{self.charger_id}: available power and energy must be >= 0")
        if not math.isfinite(self.power_w):
            raise ValueError(f"{self.charger_id}: power_w must be finite")
        if any(not 0 <= s <= 100 for s in self.soc_pct):
            raise ValueError(f"{self.charger_id}: soc_pct outside 0..100")


class ChargerStateSource(Protocol):
    """Anything that can report a :class:`ChargerState` (the local control channel, a remote
    charger polled by a regional collector, a simulator). May raise; the uplink then counts
    the charger as not reporting in that summary."""

    async def read_charger_state(self) -> ChargerState: ...
