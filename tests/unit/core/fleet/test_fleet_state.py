"""The live fleet: sessions, ordering rule, charging needs, eviction, registry hashing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import EndedSession
from vpp_core.fleet.errors import MeterValueError, RegistryError
from vpp_core.fleet.model import StationEntry
from vpp_core.fleet.registry import (
    check_station_identity,
    hash_password,
    is_slow,
    legacy_scrypt_hash,
    needs_rehash,
    verify_password,
)
from vpp_core.fleet.state import FleetState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def _meter(
    seconds: float, *, power_w: float, import_wh: float, soc: float | None = None
) -> dict[str, Any]:
    values: list[dict[str, Any]] = [
        {"value": power_w, "measurand": "Power.Active.Import"},
        {"value": import_wh, "measurand": "Energy.Active.Import.Register"},
    ]
    if soc is not None:
        values.append({"value": soc, "measurand": "SoC"})
    return {"timestamp": _ts(seconds), "sampled_value": values}


def _tx(
    fleet: FleetState,
    event: str,
    seconds: float,
    *,
    tx: str = "tx-1",
    evse: int = 1,
    meter: list[dict[str, Any]] | None = None,
    state: str | None = "Charging",
    trigger: str = "MeterValuePeriodic",
) -> None:
    info: dict[str, Any] = {"transaction_id": tx}
    if state:
        info["charging_state"] = state
    fleet.record_transaction_event(
        "CS-1",
        event_type=event,
        timestamp=T0 + timedelta(seconds=seconds),
        trigger_reason=trigger,
        seq_no=int(seconds),
        transaction_info=info,
        evse_id=evse,
        meter_value=meter,
        now=T0 + timedelta(seconds=seconds),
    )


NEEDS = {
    "requested_energy_transfer": "DC_BPT",
    "departure_time": "2026-03-01T18:00:00Z",
    "control_mode": "DynamicControl",
    "v2x_charging_parameters": {
        "max_charge_power": 11000,
        "min_charge_power": 1000,
        "max_discharge_power": 10000,
        "min_discharge_power": 500,
        "ev_min_v2x_energy_request": 20000,
        "ev_target_energy_request": 40000,
        "target_soc": 80,
    },
    "dc_charging_parameters": {
        "ev_max_current": 30,
        "ev_max_voltage": 400,
        "ev_energy_capacity": 60000,
        "state_of_charge": 42,
    },
}


def test_session_lifecycle_and_snapshot() -> None:
    fleet = FleetState()
    fleet.set_entries([StationEntry("CS-1", 2, True, "site-a", "north", None)])
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0, meter=[_meter(0, power_w=0, import_wh=100)])
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=T0, now=T0)
    _tx(fleet, "Updated", 10, meter=[_meter(10, power_w=-7000, import_wh=100, soc=41.5)])
    [s] = fleet.sessions()
    assert (s.station_id, s.evse_id, s.transaction_id, s.site, s.region) == (
        "CS-1",
        1,
        "tx-1",
        "site-a",
        "north",
    )
    assert s.connected
    assert s.started_at == T0
    assert s.present_power_w == -7000.0
    assert s.energy_import_wh == 100.0
    assert s.soc_pct == 41.5
    assert s.soc_at == T0 + timedelta(seconds=10)
    assert (s.max_discharge_w, s.min_discharge_w, s.max_charge_w, s.min_charge_w) == (
        10000,
        500,
        11000,
        1000,
    )
    assert s.target_soc_pct == 80
    assert s.ev_min_v2x_energy_wh == 20000
    assert s.battery_capacity_wh == 60000
    assert s.departure == datetime(2026, 3, 1, 18, tzinfo=UTC)
    fleet.station_disconnected("CS-1", now=T0 + timedelta(seconds=11))
    assert not fleet.sessions()[0].connected
    _tx(fleet, "Ended", 20, state="EVConnected")
    assert fleet.sessions() == []
    ended = fleet.session("CS-1", "tx-1")
    assert ended is not None
    assert not ended.active
    assert ended.present_power_w == 0.0


def test_older_readings_do_not_overwrite_newer_values() -> None:
    fleet = FleetState()
    _tx(fleet, "Started", 0, meter=[_meter(30, power_w=-5000, import_wh=300, soc=50)])
    # an offline-queued event with older readings arrives late
    _tx(fleet, "Updated", 40, meter=[_meter(10, power_w=1000, import_wh=100, soc=60)])
    s = fleet.session("CS-1", "tx-1")
    assert s is not None
    assert (s.present_power_w, s.energy_import_wh, s.soc_pct) == (-5000, 300, 50)
    assert [x.energy_import_wh for x in s.series()] == [300, 100]  # the series keeps both
    assert len(fleet.pending.samples) == 2


def test_needs_before_transaction_apply_to_next_session() -> None:
    fleet = FleetState()
    fleet.record_charging_needs("CS-1", evse_id=2, needs=NEEDS, timestamp=T0, now=T0)
    assert fleet.sessions() == []
    _tx(fleet, "Started", 5, evse=2)
    [s] = fleet.sessions()
    assert s.max_discharge_w == 10000
    assert s.evse_id == 2
    assert (("CS-1", 2)) not in fleet.pending_needs


def test_snapshot_says_when_the_needs_arrived() -> None:
    """Readiness for a dispatch (the demo waits on it): a session with a SoC but no needs yet
    has ``needs_at`` None, and the time the needs came once they did."""
    fleet = FleetState()
    _tx(fleet, "Started", 0, meter=[_meter(0, power_w=0, import_wh=1, soc=50)])
    [before] = fleet.sessions()
    assert before.soc_pct == 50
    assert before.needs_at is None
    at = T0 + timedelta(seconds=3)
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=at, now=at)
    [after] = fleet.sessions()
    assert after.needs_at == at


def test_updated_for_unknown_transaction_reopens_it() -> None:
    fleet = FleetState()
    _tx(fleet, "Updated", 50, tx="lost-start", meter=[_meter(50, power_w=-3000, import_wh=10)])
    [s] = fleet.sessions()
    assert s.transaction_id == "lost-start"
    assert s.present_power_w == -3000


def test_new_transaction_on_same_evse_supersedes_old() -> None:
    fleet = FleetState()
    _tx(fleet, "Started", 0, tx="a")
    _tx(fleet, "Started", 100, tx="b")
    assert [s.transaction_id for s in fleet.sessions()] == ["b"]
    old = fleet.session("CS-1", "a")
    assert old is not None
    assert old.stopped_reason == "Superseded"


def test_evicted_ended_session_is_not_reopened_by_late_event() -> None:
    fleet = FleetState()
    _tx(fleet, "Started", 0)
    _tx(fleet, "Ended", 10)
    fleet.pending.sessions.clear()  # as after a successful write
    assert fleet.evict_ended([("CS-1", "tx-1")]) == 1
    _tx(fleet, "Updated", 5, meter=[_meter(5, power_w=1, import_wh=1)])
    assert fleet.sessions() == []
    assert fleet.session("CS-1", "tx-1") is None


def test_an_ended_session_keeps_the_registers_of_its_ended_reading() -> None:
    """The Ended event's meter value is the session's last reading: a dispatch reads the
    energy up to it, before and after the session is written and evicted from memory."""
    fleet = FleetState()
    key = SessionKey("CS-1", 1, "tx-1")
    _tx(fleet, "Started", 0, meter=[_meter(0, power_w=0, import_wh=100)])
    _tx(fleet, "Updated", 10, meter=[_meter(10, power_w=7000, import_wh=110)])
    assert fleet.ended_session(key) is None, "still active"
    _tx(fleet, "Ended", 14, meter=[_meter(14, power_w=7000, import_wh=117.5)], state="Idle")
    ended = fleet.ended_session(key)
    assert ended == EndedSession(T0 + timedelta(seconds=14), 117.5, 0.0, T0 + timedelta(seconds=14))
    fleet.pending.sessions.clear()  # as after a successful write
    assert fleet.evict_ended([("CS-1", "tx-1")]) == 1
    assert fleet.ended_session(key) == ended
    assert fleet.ended_session(SessionKey("CS-1", 1, "tx-other")) is None


def test_status_available_unplugs_session_and_departed_trigger() -> None:
    fleet = FleetState()
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0)
    fleet.record_status("CS-1", evse_id=1, connector_status="Available", timestamp=T0, now=T0)
    assert not fleet.sessions()[0].connected
    _tx(fleet, "Updated", 1, state="Charging")
    assert fleet.sessions()[0].connected
    _tx(fleet, "Updated", 2, state=None, trigger="EVDeparted")
    assert not fleet.sessions()[0].connected


def test_a_reconnect_shows_as_a_new_station_connection() -> None:
    """Even a drop and return between two reads (the session looks connected both times)
    changes ``station_connection``: dispatch re-reads what was installed meanwhile."""
    fleet = FleetState()
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0)
    [before] = fleet.sessions()
    assert fleet.sessions()[0] is before, "unchanged sessions come from the snapshot cache"
    fleet.station_disconnected("CS-1", now=T0)
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    [after] = fleet.sessions()
    assert before.connected
    assert after.connected
    assert after.station_connection != before.station_connection


def test_bad_meter_value_changes_nothing() -> None:
    fleet = FleetState()
    with pytest.raises(MeterValueError):
        _tx(fleet, "Started", 0, meter=[{"timestamp": "nope", "sampled_value": [{"value": 1}]}])
    assert fleet.sessions() == []
    assert not fleet.stations


def test_urgent_changes_wake_the_writer() -> None:
    fleet = FleetState()
    woken: list[int] = []
    fleet.pending.on_urgent = lambda: woken.append(1)
    _tx(fleet, "Updated", 0, tx="x")  # opening a session is urgent
    assert woken == [1]


def test_password_hash_roundtrip_and_rules() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("hmac-sha256$")
    assert not needs_rehash(stored)
    assert not is_slow(stored)
    assert stored != hash_password("correct horse battery")  # salted
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterx", stored)
    assert not verify_password("anything", "garbage")
    assert not verify_password("correct horse battery", stored.replace("hmac-sha256", "md5"))
    with pytest.raises(RegistryError):
        hash_password("short")
    with pytest.raises(RegistryError):
        check_station_identity("bad:id")


def test_old_scheme_rows_still_verify_and_ask_for_a_rehash() -> None:
    old = legacy_scrypt_hash("correct horse battery", log2_n=10)
    assert old.startswith("scrypt$10$8$1$")
    assert needs_rehash(old)
    assert is_slow(old)
    assert verify_password("correct horse battery", old)
    assert not verify_password("correct horse batterx", old)


def test_snapshots_are_cached_until_the_session_changes() -> None:
    fleet = FleetState()
    fleet.set_entries([StationEntry("CS-1", 2, True, "site-a", "north", None)])
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0, meter=[_meter(0, power_w=100, import_wh=1)])
    [first] = fleet.sessions()
    [again] = fleet.sessions()
    assert again is first  # nothing changed: no rebuild
    _tx(fleet, "Updated", 10, meter=[_meter(10, power_w=-900, import_wh=2)])
    [changed] = fleet.sessions()
    assert changed.present_power_w == -900
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=T0, now=T0)
    assert fleet.sessions()[0].max_discharge_w == 10000
    fleet.station_disconnected("CS-1", now=T0)
    assert not fleet.sessions()[0].connected
    fleet.update_entries([StationEntry("CS-1", 2, True, "site-b", "south", None)])
    assert fleet.sessions()[0].site == "site-b"
    assert fleet.active_session_count() == 1


def test_what_decides_dispatch_eligibility_reaches_the_snapshot() -> None:
    """The station's subprotocol, the EV's requested mode, the modes the CSMS allowed and
    NotifyPriorityCharging reach the dispatcher's snapshot (issue 13.5, issue 18)."""
    fleet = FleetState()
    fleet.station_connected("CS-1", subprotocol="ocpp2.1", now=T0)
    _tx(fleet, "Started", 0)
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=None, now=T0)
    [s] = fleet.sessions()
    assert (s.ocpp_version, s.requested_energy_transfer) == ("ocpp2.1", "DC_BPT")
    assert (s.charge_only, s.not_dispatchable) == (None, None)
    dc_only = {**NEEDS, "requested_energy_transfer": "DC"}
    fleet.record_charging_needs("CS-1", evse_id=1, needs=dc_only, timestamp=None, now=T0)
    assert fleet.sessions()[0].charge_only == (
        "requested energy transfer DC is not bidirectional: charge-only"
    )
    fleet.record_charging_needs("CS-1", evse_id=1, needs=NEEDS, timestamp=None, now=T0)
    assert fleet.record_allowed_energy_transfer("CS-1", transaction_id="tx-1", modes=["DC"], now=T0)
    assert fleet.sessions()[0].allowed_energy_transfer == ("DC",)
    assert fleet.sessions()[0].charge_only is not None
    assert fleet.record_priority_charging("CS-1", transaction_id="tx-1", activated=True, now=T0)
    assert fleet.sessions()[0].not_dispatchable is not None
    assert fleet.record_priority_charging("CS-1", transaction_id="tx-1", activated=False, now=T0)
    assert fleet.sessions()[0].not_dispatchable is None
    # unknown sessions change nothing
    assert not fleet.record_priority_charging("CS-1", transaction_id="tx-9", activated=True, now=T0)
    assert not fleet.record_allowed_energy_transfer("CS-1", transaction_id="tx-9", modes=[], now=T0)
    # a 2.0.1 station is charge-only whatever its EV requests
    fleet.station_disconnected("CS-1", now=T0)
    fleet.station_connected("CS-1", subprotocol="ocpp2.0.1", now=T0)
    assert fleet.sessions()[0].ocpp_version == "ocpp2.0.1"
    assert fleet.sessions()[0].charge_only is not None
