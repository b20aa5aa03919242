"""The services' shared fixtures: a virtual clock and three bidirectional sessions."""

from __future__ import annotations

import pytest

from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock
from v2g_sim.ev import EvSpec


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(auto=False)


@pytest.fixture
def fleet(clock: VirtualClock) -> ScriptedFleet:
    fleet = ScriptedFleet(clock)
    for i in range(3):
        fleet.add(f"CS{i}", EvSpec(soc_pct=70.0, min_discharge_w=0.0, min_charge_w=0.0))
    return fleet
