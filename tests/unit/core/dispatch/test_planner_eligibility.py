"""Who may be planned, and in which direction (issue 13 item 5, issue 18; TC_Q_107, TC_K_118):
only OCPP 2.1 sessions whose requested energy transfer mode is bidirectional, and not
restricted by the NotifyAllowedEnergyTransfer the station accepted, are planned for
discharge; every other session is listed with its reason, and still charges. An EV that asked
for priority charging is in no plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.unit.core.dispatch.scripted_fleet import T0
from tests.unit.core.dispatch.test_planner_properties import _state
from vpp_core.dispatch.columns import build_columns
from vpp_core.dispatch.config import PlannerConfig
from vpp_core.dispatch.model import Direction
from vpp_core.dispatch.planner import plan_dispatch
from vpp_core.dispatch.ports import SessionState

CHARGE_ONLY_201 = "OCPP 2.0.1 station: charge-only (2.0.1 profiles cannot command discharge)"
PRIORITY = "priority charging requested by the EV (NotifyPriorityCharging)"


@dataclass(frozen=True)
class Case:
    name: str
    session: dict[str, object]
    discharge_reason: str | None  # None: planned for discharge
    charge_reason: str | None  # None: planned for charge


CASES = [
    Case("2.1, DC_BPT", {}, None, None),
    Case("2.1, AC_BPT", {"requested_energy_transfer": "AC_BPT"}, None, None),
    Case("2.1, AC_BPT_DER", {"requested_energy_transfer": "AC_BPT_DER"}, None, None),
    Case("2.1, DC_ACDP_BPT", {"requested_energy_transfer": "DC_ACDP_BPT"}, None, None),
    Case("no OCPP version known (read as 2.1)", {"ocpp_version": None}, None, None),
    Case(
        "2.1, DC with maxDischargePower 9000 (the issue's case)",
        {"requested_energy_transfer": "DC", "max_discharge_w": 9_000.0},
        "requested energy transfer DC is not bidirectional: charge-only",
        None,
    ),
    Case(
        "2.1, AC_three_phase",
        {"requested_energy_transfer": "AC_three_phase"},
        "requested energy transfer AC_three_phase is not bidirectional: charge-only",
        None,
    ),
    Case(
        "2.1, no needs reported",
        {"requested_energy_transfer": None},
        "no requested energy transfer mode reported: charge-only",
        None,
    ),
    Case(
        "2.1, DC_BPT but the CSMS allowed only DC",
        {"allowed_energy_transfer": ("DC",)},
        "NotifyAllowedEnergyTransfer allowed no bidirectional mode (DC): charge-only",
        None,
    ),
    Case(
        "2.1, DC_BPT and the CSMS allowed DC_BPT",
        {"allowed_energy_transfer": ("DC", "DC_BPT")},
        None,
        None,
    ),
    Case(
        "2.0.1 station, even with DC_BPT and discharge power",
        {"ocpp_version": "ocpp2.0.1"},
        CHARGE_ONLY_201,
        None,
    ),
    Case("priority charging", {"priority_charging": True}, PRIORITY, PRIORITY),
    Case(
        "priority charging wins over charge-only",
        {"priority_charging": True, "ocpp_version": "ocpp2.0.1"},
        PRIORITY,
        PRIORITY,
    ),
]


def _plan(states: list[SessionState], direction: Direction) -> tuple[dict[str, str], set[str]]:
    """(station -> exclusion reason, stations allocated) for a 20 kW plan over one hour."""
    cols = build_columns(
        states,
        direction=direction,
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        config=PlannerConfig(),
    )
    plan = plan_dispatch(
        cols,
        target_w=20_000.0 * direction.sign,
        duration_s=3600,
        headroom=0.9,
        algorithm="proportional",
    )
    assert plan.excluded == cols.excluded
    used = {k.station_id for k, w in plan.allocations() if w * direction.sign > 0}
    return {e.key.station_id: e.reason for e in plan.excluded}, used


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("direction", list(Direction))
def test_eligibility(case: Case, direction: Direction) -> None:
    # CS0 is a plain bidirectional 2.1 session beside the one under test (CS1)
    states = [_state(0), _state(1, **case.session)]
    reasons, used = _plan(states, direction)
    expected = case.discharge_reason if direction is Direction.DISCHARGE else case.charge_reason
    assert reasons.get("CS1") == expected, f"{case.name}: got {reasons.get('CS1')!r}"
    assert ("CS1" in used) == (expected is None)
    assert "CS0" in used
    assert "CS0" not in reasons


def test_a_mixed_fleet_discharges_on_the_21_part_and_charges_on_all() -> None:
    states = [
        _state(0),
        _state(1),
        _state(2, ocpp_version="ocpp2.0.1", requested_energy_transfer="DC", max_discharge_w=0.0),
        _state(3, requested_energy_transfer="AC_three_phase"),
    ]
    reasons, used = _plan(states, Direction.DISCHARGE)
    assert used == {"CS0", "CS1"}
    assert set(reasons) == {"CS2", "CS3"}
    # the 2.0.1 station's reason is its protocol, not its (absent) discharge power
    assert reasons["CS2"] == CHARGE_ONLY_201
    _, used = _plan(states, Direction.CHARGE)
    assert used == {"CS0", "CS1", "CS2", "CS3"}
