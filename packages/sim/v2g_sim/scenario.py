"""The demo's scenario: which EVs plug in where, what the grid operator asks for, who leaves
early, and how time is compressed.

Time compression (``speed`` S): the scenario is written in *scenario seconds* (a 15-minute
dispatch, departures hours away). It runs in real time with every duration divided by S and
every battery capacity divided by S, so powers stay real (kW), the wall clock, OCPP
timestamps and profile validity stay honest, and each vehicle's SoC moves exactly as it
would in the uncompressed scenario. Energies that actually flow are S times smaller than in
the uncompressed scenario; reports state what flowed (``energy_wh``), and
:meth:`DemoScenario.uncompressed_wh` scales it back for comparison.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from v2g_sim.ev import EvSpec

__all__ = ["DemoScenario", "PlannedEv", "Unplug", "build_scenario"]


@dataclass(frozen=True, slots=True)
class PlannedEv:
    """One EV to plug in at ``station_id`` (``spec`` already compressed)."""

    station_id: str
    spec: EvSpec


@dataclass(frozen=True, slots=True)
class Unplug:
    """A vehicle leaving ``at_s`` real seconds after the dispatch window opened."""

    station_id: str
    at_s: float


@dataclass(frozen=True, slots=True)
class DemoScenario:
    speed: float
    power_mw: float
    window_scenario_s: float
    evs: tuple[PlannedEv, ...]
    unplugs: tuple[Unplug, ...] = field(default=())

    @property
    def window_s(self) -> float:
        """Real length of the dispatch window in seconds."""
        return self.window_scenario_s / self.speed

    @property
    def target_energy_wh(self) -> float:
        """Energy the request asks for over the real window (what can actually flow)."""
        return self.power_mw * 1e6 * self.window_s / 3600.0

    def uncompressed_wh(self, energy_wh: float) -> float:
        """An energy that flowed in the compressed run, as it would in the scenario."""
        return energy_wh * self.speed


def _ev(rng: random.Random, station_id: str, speed: float) -> EvSpec:
    """A varied vehicle: battery, SoC, limits, target and departure drawn at random; 1 in 10
    cannot discharge (a charge-only EV the planner must leave out)."""
    min_soc = rng.choice([20.0, 20.0, 25.0, 30.0])
    return EvSpec(
        ev_id=f"EV-{station_id}",
        battery_capacity_wh=rng.choice([40_000.0, 58_000.0, 64_000.0, 77_000.0, 100_000.0]) / speed,
        soc_pct=round(rng.uniform(min_soc + 15.0, 92.0), 1),
        min_soc_pct=min_soc,
        max_soc_pct=95.0,
        max_charge_w=11_000.0,
        min_charge_w=1_400.0,
        max_discharge_w=rng.choice([7_000.0, 9_000.0, 11_000.0]),
        min_discharge_w=1_400.0,
        target_soc_pct=rng.choice([70.0, 80.0, 90.0]),
        departure_in_s=rng.uniform(2.0, 10.0) * 3600.0 / speed,
        bidirectional=rng.random() >= 0.1,
    )


def build_scenario(
    station_ids: list[str],
    *,
    speed: float = 10.0,
    power_mw: float | None = None,
    window_scenario_s: float = 900.0,
    unplug_share: float = 0.1,
    seed: int = 1,
) -> DemoScenario:
    """An EV at every station, and ``unplug_share`` of them leaving between 25 % and 75 % of the
    window. ``power_mw`` defaults to 4 kW per station (0.2 MW for 50)."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    rng = random.Random(seed)
    evs = tuple(PlannedEv(sid, _ev(rng, sid, speed)) for sid in station_ids)
    window_s = window_scenario_s / speed
    # vehicles that discharge, so their leaving is a drop-out the runner must re-plan
    givers = [ev for ev in evs if ev.spec.bidirectional]
    if not 0.0 <= unplug_share <= 1.0:
        raise ValueError(f"unplug_share must be within 0..1, got {unplug_share!r}")
    # a positive share unplugs at least one vehicle; 0 unplugs none
    wanted = max(1, round(len(evs) * unplug_share)) if unplug_share > 0 else 0
    leaving = rng.sample(givers, min(len(givers), wanted))
    unplugs = tuple(
        sorted(
            (Unplug(ev.station_id, round(rng.uniform(0.25, 0.75) * window_s, 2)) for ev in leaving),
            key=lambda u: u.at_s,
        )
    )
    power = power_mw if power_mw is not None else round(0.004 * len(station_ids), 3)
    return DemoScenario(speed, power, window_scenario_s, evs, unplugs)
