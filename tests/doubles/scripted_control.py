"""A scripted stand-in for the control loop's channel and the EV link, for station tests that
do not need the real control process: it follows each lease at once (no ramp), integrates
energy on an injected monotonic clock, and records every lease, contact and EV limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from v2g_gateway.control.channel import SetpointLease
from v2g_gateway.control.ports import EvChargingNeeds


@dataclass(frozen=True)
class ScriptedSnapshot:
    power_w: float
    commanded_w: float
    soc_pct: float | None
    ev_connected: bool
    energy_import_wh: float
    energy_export_wh: float
    contactor_closed: bool
    fail_safe: bool
    trip_code: str | None
    cycles: int


class ScriptedControl:
    """Implements the station's ``ControlPort``."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.ev_connected = False
        self.soc_pct: float | None = None
        self.capacity_wh = 60_000.0
        self.power_w = 0.0
        self.energy_import_wh = 1000.0
        self.energy_export_wh = 500.0
        self.leases: list[SetpointLease] = []
        self.contacts = 0
        self.ev_limits: list[tuple[float, float]] = []
        self.ev_held = False
        self._lease_until = -1.0
        self._last_s = clock()
        self.cycles = 0
        self.trip_code: str | None = None

    def plug_in(self, soc_pct: float = 60.0) -> None:
        self.ev_connected, self.soc_pct = True, soc_pct

    def unplug(self) -> None:
        self._advance()
        self.ev_connected, self.soc_pct, self.power_w = False, None, 0.0

    def grant_lease(self, lease: SetpointLease) -> None:
        self._advance()
        self.leases.append(lease)
        self._lease_until = self._clock() + lease.valid_for_s
        self.power_w = lease.power_w if self.ev_connected else 0.0

    def mark_csms_contact(self) -> None:
        self.contacts += 1

    def set_ev_limits(self, *, max_charge_w: float, max_discharge_w: float) -> None:
        self.ev_limits.append((max_charge_w, max_discharge_w))

    def hold_for_ev(self, held: bool) -> None:
        self.ev_held = held

    def snapshot(self) -> ScriptedSnapshot:
        self._advance()
        self.cycles += 1
        return ScriptedSnapshot(
            power_w=self.power_w,
            commanded_w=self.power_w,
            soc_pct=self.soc_pct,
            ev_connected=self.ev_connected,
            energy_import_wh=self.energy_import_wh,
            energy_export_wh=self.energy_export_wh,
            contactor_closed=self.ev_connected,
            fail_safe=False,
            trip_code=self.trip_code,
            cycles=self.cycles,
        )

    def _advance(self) -> None:
        now = self._clock()
        if now > self._lease_until:
            self.power_w = 0.0  # the lease ran out: what the real loop does
        energy_wh = self.power_w * (now - self._last_s) / 3600.0
        self._last_s = now
        if energy_wh >= 0:
            self.energy_import_wh += energy_wh
        else:
            self.energy_export_wh -= energy_wh
        if self.soc_pct is not None:
            self.soc_pct += 100.0 * energy_wh / self.capacity_wh


def ev_needs(*, departure: datetime | None = None) -> EvChargingNeeds:
    return EvChargingNeeds(
        ev_id="EV-1",
        battery_capacity_wh=60_000.0,
        max_charge_w=11_000.0,
        min_charge_w=1_000.0,
        max_discharge_w=10_000.0,
        min_discharge_w=1_000.0,
        ev_target_energy_wh=20_000.0,
        ev_min_energy_wh=5_000.0,
        ev_max_energy_wh=30_000.0,
        ev_min_v2x_energy_wh=12_000.0,
        ev_max_v2x_energy_wh=40_000.0,
        target_soc_pct=80.0,
        min_soc_pct=20.0,
        departure=departure or datetime.now(UTC) + timedelta(hours=8),
    )


class ScriptedEvLink:
    """Implements ``EvLink`` from a control stand-in's plug state."""

    def __init__(self, control: ScriptedControl, needs: EvChargingNeeds | None = None) -> None:
        self._control = control
        self.needs = needs or ev_needs()
        self.reads = 0

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        self.reads += 1
        return self.needs if self._control.ev_connected else None
