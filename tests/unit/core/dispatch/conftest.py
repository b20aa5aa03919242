"""Fixtures for dispatch tests: a virtual clock and a scripted fleet of simulated EVs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock
from v2g_sim.ev import EvSpec


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fleet(clock: VirtualClock) -> ScriptedFleet:
    return ScriptedFleet(clock)


def ev(soc_pct: float = 70.0, max_discharge_w: float = 10_000.0, **kw: Any) -> EvSpec:
    """A bidirectional EV: 60 kWh, no departure constraints unless given."""
    return EvSpec(
        soc_pct=soc_pct,
        max_discharge_w=max_discharge_w,
        min_discharge_w=0.0,
        departure_in_s=None,
        target_soc_pct=None,
        **kw,
    )
