"""One row shape per table: every builder returns every column of its table, whatever the
outcome it records (issue 13 item 2: a failed command's row lacked ``status``/``reason``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table

from vpp_core.fleet import rows, schema
from vpp_core.fleet.model import EvseLive, SessionLive, StationLive
from vpp_core.fleet.quarantine import quarantine_row
from vpp_core.fleet.state import FleetState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def columns(table: Table) -> set[str]:
    """The columns a row must carry (an autoincrement id is the database's)."""
    return {c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)}


def fleet_rows() -> dict[str, tuple[Table, list[dict[str, Any]]]]:
    """Every kind of row the fleet queues, built the way the fleet builds them."""
    fleet = FleetState()
    fleet.record_command(
        station_id="CS-1", action="SetChargingProfile", request={}, sent_at=T0, status="Accepted"
    )
    fleet.record_command(
        station_id="CS-1",
        action="SetChargingProfile",
        request={},
        sent_at=T0,
        error="OcppConnectionClosed: closed",
        latency_s=0.2,
    )
    fleet.record_security_event("CS-1", event_type="X", timestamp=T0, tech_info=None, now=T0)
    profile = {"id": 7, "stack_level": 50, "charging_profile_purpose": "TxProfile"}
    fleet.record_reported_profiles("CS-1", evse_id=1, source="CSO", profiles=[profile], now=T0)
    session = SessionLive("CS-1", "tx-1", 1, T0)
    return {
        "command_log": (schema.command_log, fleet.pending.commands),
        "security_events": (schema.security_events, fleet.pending.security_events),
        "reported_profiles": (schema.reported_profiles, fleet.pending.profiles),
        "station_state": (schema.station_state, [rows.station_row(StationLive("CS-1"))]),
        "evse_state": (schema.evse_state, [rows.evse_row(EvseLive("CS-1", 1), pending_needs=None)]),
        "sessions": (schema.sessions, [rows.session_row(session)]),
        "session_samples": (
            schema.session_samples,
            [rows.sample_row("CS-1", "tx-1", (T0, 1.0, 2.0, 3.0, 50.0))],
        ),
        "write_quarantine": (
            schema.write_quarantine,
            [quarantine_row("sessions", {"seq_no": 2**70}, "OverflowError", at=T0)],
        ),
    }


@pytest.mark.parametrize("name", list(fleet_rows()))
def test_every_row_of_a_table_has_exactly_its_columns(name: str) -> None:
    table, built = fleet_rows()[name]
    assert built
    for row in built:
        assert set(row) == columns(table), name


def test_answered_and_failed_commands_have_one_shape() -> None:
    _table, (answered, failed) = fleet_rows()["command_log"]
    assert answered.keys() == failed.keys()
    assert (answered["status"], answered["error"]) == ("Accepted", None)
    assert (failed["status"], failed["error"]) == (None, "OcppConnectionClosed: closed")


def test_a_quarantined_row_keeps_values_json_cannot_hold() -> None:
    row = quarantine_row("sessions", {"seq_no": 2**70, "at": T0}, "OverflowError: x", at=T0)
    assert row["row_json"] == f'{{"seq_no":"{2**70}","at":"2026-03-01T12:00:00+00:00"}}'
