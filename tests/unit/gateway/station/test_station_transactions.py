"""Transactions from control snapshots (E02 cable-first start, E06 stop on unplug), meter
values, trigger reasons, the SQLite outbox's seqNo continuity across a reopen, the
NotifyEVChargingNeeds mapping, reconnect backoff and the config rules."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.doubles.scripted_control import ScriptedSnapshot, ev_needs
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.link import backoff_s
from v2g_gateway.station.needs import allows_discharge, charging_needs_request
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.remote import PendingStart, RemoteControl
from v2g_gateway.station.store import open_state_db
from v2g_gateway.station.transactions import EvseTransactions, StartInfo, TickInputs

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
IDLE = ScriptedSnapshot(0.0, 0.0, None, False, 1000.0, 500.0, False, False, None, 5)
PLUGGED = replace(IDLE, ev_connected=True, soc_pct=60.0, contactor_closed=True)


def tracker(tmp_path: Path) -> tuple[EvseTransactions, TransactionJournal]:
    journal = TransactionJournal(open_state_db(tmp_path))
    t = EvseTransactions(
        journal, evse_id=1, connector_id=1, sampled_interval_s=60.0, rate_change_threshold_w=100.0
    )
    return t, journal


def tick(
    view: ScriptedSnapshot,
    s: float,
    *,
    mode: str = "ChargingOnly",
    target_w: float = 11000.0,
    online: bool = True,
) -> TickInputs:
    return TickInputs(view, T0 + timedelta(seconds=s), s, online, mode, target_w)


def drain(journal: TransactionJournal) -> list[dict]:
    out = []
    while (event := journal.peek()) is not None:
        out.append(event.payload)
        journal.ack(event.position)
    return out


def test_session_events_and_reasons(tmp_path: Path) -> None:
    t, journal = tracker(tmp_path)
    assert t.tick(tick(replace(PLUGGED, cycles=0), 0)) == []  # no measurement yet
    assert t.tick(tick(IDLE, 0)) == []
    assert t.tick(tick(PLUGGED, 1)) == ["CablePluggedIn"]
    assert t.tick(tick(PLUGGED, 2)) == []
    assert t.tick(tick(PLUGGED, 3, target_w=11050.0)) == []  # below the threshold
    assert t.tick(tick(PLUGGED, 4, target_w=5000.0)) == ["ChargingRateChanged"]
    discharging = replace(PLUGGED, power_w=-7000.0)
    assert t.tick(tick(discharging, 5, mode="CentralSetpoint", target_w=-7000.0)) == [
        "OperationModeChanged"
    ]
    assert t.tick(
        tick(discharging, 65, mode="CentralSetpoint", target_w=-7000.0, online=False)
    ) == ["MeterValuePeriodic"]
    assert t.tick(tick(IDLE, 66)) == ["EVCommunicationLost"]
    events = drain(journal)
    assert [e["seq_no"] for e in events] == [0, 1, 2, 3, 4]
    assert [e["event_type"] for e in events] == [
        "Started",
        "Updated",
        "Updated",
        "Updated",
        "Ended",
    ]
    assert events[0]["evse"] == {"id": 1, "connector_id": 1}
    assert events[2]["transaction_info"]["operation_mode"] == "CentralSetpoint"
    assert events[3]["offline"] is True
    assert "offline" not in events[2]
    assert events[4]["transaction_info"]["stopped_reason"] == "EVDisconnected"
    samples = {s["measurand"]: s["value"] for s in events[3]["meter_value"][0]["sampled_value"]}
    assert samples["Power.Active.Import"] == -7000.0
    assert samples["Power.Active.Export"] == 7000.0
    assert samples["SoC"] == 60.0
    assert {
        events[0]["meter_value"][0]["sampled_value"][0]["context"],
        events[4]["meter_value"][0]["sampled_value"][0]["context"],
    } == {"Transaction.Begin", "Transaction.End"}
    assert journal.running() == {}


def test_restart_keeps_transaction_and_seq_no(tmp_path: Path) -> None:
    t, _journal = tracker(tmp_path)
    t.tick(tick(PLUGGED, 1))
    t.tick(tick(PLUGGED, 2, target_w=0.0))
    tx_id = t.transaction.transaction_id if t.transaction else None
    # A new process: same state directory, the EV still plugged in.
    t2, journal2 = tracker(tmp_path)
    assert t2.transaction is not None
    assert t2.transaction.transaction_id == tx_id
    assert t2.tick(tick(PLUGGED, 3, target_w=0.0)) == []  # resumes without a spurious event
    assert t2.tick(tick(IDLE, 4)) == ["EVCommunicationLost"]
    events = drain(journal2)
    assert [e["seq_no"] for e in events] == [0, 1, 2]
    assert {e["transaction_info"]["transaction_id"] for e in events} == {tx_id}


def test_charging_needs_request() -> None:
    needs = ev_needs(departure=T0 + timedelta(hours=8))
    request = charging_needs_request(needs, evse_id=1, now=T0, current_type="DC")
    cn = request["charging_needs"]
    assert cn["requested_energy_transfer"] == "DC_BPT"
    assert cn["available_energy_transfer"] == ["DC_BPT", "DC"]
    assert cn["control_mode"] == "DynamicControl"
    assert cn["departure_time"] == (T0 + timedelta(hours=8)).isoformat()
    v2x = cn["v2x_charging_parameters"]
    assert (v2x["max_discharge_power"], v2x["min_discharge_power"]) == (10000.0, 1000.0)
    assert v2x["ev_min_v2x_energy_request"] == 12000.0
    assert v2x["target_soc"] == 80
    uni = charging_needs_request(
        replace(needs, bidirectional=False), evse_id=1, now=T0, current_type="AC"
    )
    assert uni["charging_needs"]["available_energy_transfer"] == ["AC_three_phase"]
    assert "max_discharge_power" not in uni["charging_needs"]["v2x_charging_parameters"]
    assert allows_discharge(["DC", "DC_BPT"])
    assert not allows_discharge(["DC", "AC_three_phase"])


def test_renegotiated_needs_without_bpt_declare_no_discharge() -> None:
    """After NotifyAllowedEnergyTransfer ["DC"] a bidirectional EV renegotiates plain DC: no
    DC_BPT requested or offered, no discharge powers, no V2X energy requests."""
    needs = ev_needs(departure=T0 + timedelta(hours=8))
    request = charging_needs_request(
        needs, evse_id=1, now=T0, current_type="DC", discharge_allowed=False
    )
    cn = request["charging_needs"]
    assert cn["requested_energy_transfer"] == "DC"
    assert cn["available_energy_transfer"] == ["DC"]
    v2x = cn["v2x_charging_parameters"]
    assert "max_discharge_power" not in v2x
    assert "min_discharge_power" not in v2x
    assert "ev_min_v2x_energy_request" not in v2x
    assert v2x["max_charge_power"] == 11000.0


def test_remote_stop_and_reports_while_plugged_in(tmp_path: Path) -> None:
    """RemoteStop ends the transaction with the EV still plugged in (no new one starts while
    ``may_start`` is False); a RemoteStart authorization and a Trigger are Updated events."""
    t, journal = tracker(tmp_path)
    start = StartInfo("RemoteStart", {"id_token": "TAG1", "type": "ISO14443"}, 42)
    assert t.tick(tick(PLUGGED, 1), start=start) == ["RemoteStart"]
    assert t.report(tick(PLUGGED, 2), StartInfo("Trigger")) == "Trigger"
    assert t.stop(tick(PLUGGED, 3), "RemoteStop", "Remote") == "RemoteStop"
    assert t.transaction is None
    assert t.tick(tick(PLUGGED, 4), may_start=False) == []
    started, triggered, ended = drain(journal)
    assert started["id_token"] == {"id_token": "TAG1", "type": "ISO14443"}
    assert started["transaction_info"]["remote_start_id"] == 42
    assert started["trigger_reason"] == "RemoteStart"
    assert triggered["event_type"] == "Updated"
    assert triggered["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"
    assert ended["event_type"] == "Ended"
    assert ended["transaction_info"]["stopped_reason"] == "Remote"
    assert ended["transaction_info"]["charging_state"] == "EVConnected"
    assert t.tick(tick(PLUGGED, 5)) == ["CablePluggedIn"]  # a fresh one once allowed


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(1)
    delays = [backoff_s(a, initial_s=1, max_s=30, factor=2, jitter=0.5, rng=rng) for a in range(8)]
    assert all(0.5 * min(30, 2**a) <= d <= min(30, 2**a) for a, d in enumerate(delays))
    assert len({round(d, 6) for d in delays[5:]}) == 3  # capped, yet not in lockstep


def test_backoff_honours_a_retry_after_up_to_its_cap() -> None:
    def delay(attempt: int, asked_s: float | None) -> float:
        rng = random.Random(1)
        return backoff_s(
            attempt, initial_s=1, max_s=30, factor=2, jitter=0.5, rng=rng, asked_s=asked_s
        )

    assert delay(0, 12.0) == 12.0  # the CSMS asked for longer than our first backoff
    assert delay(6, 12.0) == delay(6, None) > 12.0  # our own backoff is already longer
    assert delay(0, 3600.0) == 30.0  # never beyond our own cap


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"csms_url": "ws://h", "security_profile": 2, "password": "p" * 16}, "wss://"),
        ({"csms_url": "wss://h", "security_profile": 2}, "password"),
        ({"csms_url": "wss://h", "security_profile": 3}, "client_cert"),
        ({"csms_url": "ws://h", "security_profile": 1, "password": "short"}, "16"),
        (
            {"csms_url": "ws://h", "security_profile": 1, "password": "p" * 16, "identity": "a:b"},
            "pattern",
        ),
        (
            {"csms_url": "ws://h", "security_profile": 1, "password": "p" * 16, "bogus_key": 1},
            "Extra inputs",
        ),
    ],
)
def test_config_rules(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StationConfig(**{"identity": "CS-1", **values})


def test_outbox_counts_pending_events_per_transaction(tmp_path: Path) -> None:
    """GetTransactionStatus (E14) reads what waits in the outbox, per transaction."""
    t, journal = tracker(tmp_path)
    t.tick(tick(PLUGGED, 1))
    tx_id = t.transaction.transaction_id if t.transaction else ""
    assert journal.pending(tx_id) == 1
    assert journal.pending("other") == 0
    assert journal.pending() == 1
    drain(journal)
    assert journal.pending(tx_id) == 0


def test_remote_start_waits_for_the_ev_until_its_timeout() -> None:
    """F04: a remote start not followed by a plug-in within EVConnectionTimeOut is dropped."""
    remote = RemoteControl()
    pending = PendingStart(
        StartInfo("RemoteStart", {"id_token": "T", "type": "Local"}, 1), None, 100.0
    )
    remote.start_when_plugged(1, pending)
    assert remote.has_pending_start(1, now_s=99.0)
    assert not remote.has_pending_start(1, now_s=100.0)
    assert remote.take_start(1, now_s=100.0) is None
    remote.start_when_plugged(1, pending)
    assert remote.take_start(1, now_s=50.0) is pending
    assert remote.take_start(1, now_s=50.0) is None  # used once
