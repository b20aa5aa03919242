"""The report's per-role breakdown (issue 18: the 2.0.1 / charge-only part apart from the
bidirectional 2.1 part), and that it is in the JSON report."""

from __future__ import annotations

import json

import pytest

from tests.unit.core.dispatch.test_report import _session, report
from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.render import report_json
from vpp_core.dispatch.roles import role_breakdown


def _record(i: int, role: str, *, sent: bool, first_w: float, last_w: float) -> SessionRecord:
    record = SessionRecord(
        SessionKey(f"CS{i}", 1, f"tx{i}"),
        role=role,
        profile_sent=sent,
        first_setpoint_w=first_w,
        setpoint_w=last_w,
        sampled_energy_wh=last_w / 1000.0,
    )
    record.import_wh_start, record.export_wh_start = 0.0, 0.0
    record.import_wh, record.export_wh = max(last_w, 0.0) / 100.0, max(-last_w, 0.0) / 100.0
    return record


def test_each_role_sums_only_its_own_sessions() -> None:
    records = [
        _record(1, "charge_only", sent=True, first_w=2_000.0, last_w=1_500.0),
        _record(2, "charge_only", sent=False, first_w=0.0, last_w=0.0),  # excluded
        _record(3, "bidirectional", sent=True, first_w=3_000.0, last_w=2_500.0),
        _record(4, "bidirectional", sent=True, first_w=1_000.0, last_w=4_000.0),
    ]
    charge_only, bidirectional = role_breakdown(records)
    assert (charge_only.role, bidirectional.role) == ("charge_only", "bidirectional")
    assert (charge_only.sessions_considered, charge_only.sessions_dispatched) == (2, 1)
    assert (charge_only.first_setpoint_w, charge_only.last_setpoint_w) == (2_000.0, 1_500.0)
    assert charge_only.metered_energy_wh == pytest.approx(15.0)
    assert (bidirectional.sessions_considered, bidirectional.sessions_dispatched) == (2, 2)
    assert (bidirectional.first_setpoint_w, bidirectional.last_setpoint_w) == (4_000.0, 6_500.0)
    assert bidirectional.sampled_energy_wh == pytest.approx(6.5)


def test_a_fleet_of_one_role_still_shows_both() -> None:
    only = role_breakdown([_record(1, "bidirectional", sent=True, first_w=-1.0, last_w=-1.0)])
    assert [(r.role, r.sessions_considered) for r in only] == [
        ("charge_only", 0),
        ("bidirectional", 1),
    ]


def test_the_json_report_carries_the_roles() -> None:
    data = json.loads(report_json(report(sessions=(_session(1, 500.0),))))
    roles = {r["role"]: r for r in data["roles"]}
    assert roles["bidirectional"]["metered_energy_wh"] == pytest.approx(-500.0)
    assert roles["charge_only"]["sessions_dispatched"] == 0
