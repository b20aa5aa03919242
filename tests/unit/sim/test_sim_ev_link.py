"""The simulated EV's declared V2X needs, the EvLink and the simulated contactor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from v2g_sim.charger import SimContactor, SimEvLink, SimulatedCharger
from v2g_sim.ev import EvSpec

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


async def test_ev_link_reports_needs_after_plug_in_and_none_after_plug_out() -> None:
    charger = SimulatedCharger.create(1)
    link = SimEvLink(charger)
    assert await link.read_charging_needs() is None
    ev = EvSpec(
        battery_capacity_wh=60_000.0,
        soc_pct=50.0,
        min_soc_pct=20.0,
        max_soc_pct=90.0,
        target_soc_pct=80.0,
        departure_in_s=3600.0,
        max_discharge_w=9000.0,
    )
    charger.plug_in(ev, now=T0)
    needs = await link.read_charging_needs()
    assert needs is not None
    assert needs.max_discharge_w == 9000.0
    assert needs.ev_target_energy_wh == pytest.approx(18_000.0)
    assert needs.ev_min_v2x_energy_wh == pytest.approx(-18_000.0)
    assert needs.ev_max_v2x_energy_wh == pytest.approx(24_000.0)
    assert needs.departure == T0 + timedelta(hours=1)
    charger.plug_out()
    assert await link.read_charging_needs() is None


async def test_unidirectional_ev_declares_no_discharge() -> None:
    charger = SimulatedCharger.create(1)
    charger.plug_in(EvSpec(bidirectional=False), now=T0)
    needs = await SimEvLink(charger).read_charging_needs()
    assert needs is not None
    assert needs.max_discharge_w == 0.0
    assert not needs.bidirectional


def test_contactor_open_cuts_output() -> None:
    charger = SimulatedCharger.create(1)
    charger.plug_in(EvSpec(), now=T0)
    contactor = SimContactor(charger.model)
    charger.model.command_setpoint(-5000.0)
    charger.model.step(5.0)
    contactor.open()
    assert not contactor.closed
    assert charger.model.power_w == 0.0
    charger.model.step(1.0)
    assert charger.model.power_w == 0.0
    contactor.close()
    charger.model.step(5.0)
    assert charger.model.power_w < -4000.0
