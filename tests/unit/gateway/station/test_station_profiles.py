"""SetChargingProfile validation (K01 requirements) and the SQLite profile store:
replacement by id and by (EVSE, stackLevel, purpose), clearing by id and criteria,
Dynamic updates, and survival across a reopen (a daemon restart)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.errors import ProfileRejected, StationStateError
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import ProfileStore, open_state_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TX = {1: ActiveTransaction("tx-1", NOW - timedelta(minutes=5))}


def every_evse_bidirectional(evse_id: int) -> bool:
    """Every EVSE's session negotiated a bidirectional mode."""
    return True


def wire(pid: int = 1, **changes: Any) -> dict[str, Any]:
    """A valid VPP discharge TxProfile in the adapter's snake_case form; ``changes`` override
    top-level keys, ``period``/``schedule`` dicts are merged into the first period/schedule."""
    profile: dict[str, Any] = {
        "id": pid,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": "tx-1",
        "max_offline_duration": 30,
        "charging_schedule": [
            {
                "id": pid,
                "start_schedule": NOW.isoformat(),
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {
                        "start_period": 0,
                        "operation_mode": "CentralSetpoint",
                        "setpoint": -7000.0,
                        "discharge_limit": -7000.0,
                    }
                ],
            }
        ],
    }
    period = changes.pop("period", {})
    schedule = changes.pop("schedule", {})
    profile.update(changes)
    profile["charging_schedule"][0].update(schedule)
    profile["charging_schedule"][0]["charging_schedule_period"][0].update(period)
    return {k: v for k, v in profile.items() if v is not None}


def clean(d: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(d)
    sched = out["charging_schedule"][0]
    sched["charging_schedule_period"] = [
        {k: v for k, v in p.items() if v is not None} for p in sched["charging_schedule_period"]
    ]
    out["charging_schedule"][0] = {k: v for k, v in sched.items() if v is not None}
    return out


def open_smart(
    tmp_path: Path, may_discharge: Callable[[int], bool] = every_evse_bidirectional
) -> SmartCharging:
    config = StationConfig(
        csms_url="ws://x",
        identity="CS-1",
        security_profile=1,
        password="p" * 16,
        state_dir=tmp_path,
    )
    return SmartCharging(config, ProfileStore(open_state_db(tmp_path)), may_discharge=may_discharge)


@pytest.fixture
def smart(tmp_path: Path) -> SmartCharging:
    return open_smart(tmp_path)


REJECTIONS = [
    ("TxProfile without a transaction", 1, wire(), {}, "NoTransaction"),
    ("TxProfile for another transaction", 1, wire(transaction_id="tx-9"), TX, "TxNotFound"),
    ("TxProfile on EVSE 0", 0, wire(), TX, "InvalidProfile"),
    ("unknown EVSE", 7, wire(), TX, "UnknownEvse"),
    (
        "transactionId on a TxDefaultProfile",
        1,
        wire(charging_profile_purpose="TxDefaultProfile"),
        TX,
        "InvalidProfile",
    ),
    (
        "station max on an EVSE",
        1,
        wire(
            charging_profile_purpose="ChargingStationMaxProfile",
            transaction_id=None,
            period={
                "operation_mode": None,
                "setpoint": None,
                "limit": 11000.0,
                "discharge_limit": None,
            },
        ),
        TX,
        "InvalidProfile",
    ),
    (
        "external constraints from the CSMS",
        0,
        wire(charging_profile_purpose="ChargingStationExternalConstraints", transaction_id=None),
        TX,
        "InvalidProfile",
    ),
    ("CentralSetpoint without setpoint", 1, wire(period={"setpoint": None}), TX, "InvalidSchedule"),
    (
        "ChargingOnly without limit",
        1,
        wire(period={"operation_mode": "ChargingOnly", "setpoint": None, "discharge_limit": None}),
        TX,
        "InvalidSchedule",
    ),
    (
        "ChargingOnly with a setpoint",
        1,
        wire(period={"operation_mode": "ChargingOnly", "limit": 5.0}),
        TX,
        "InvalidSchedule",
    ),
    (
        "unsupported operation mode",
        1,
        wire(period={"operation_mode": "AFRRSignal"}),
        TX,
        "UnsupportedParam",
    ),
    (
        "Absolute without startSchedule",
        1,
        wire(schedule={"start_schedule": None}),
        TX,
        "InvalidSchedule",
    ),
    (
        "Relative with startSchedule",
        1,
        wire(charging_profile_kind="Relative"),
        TX,
        "InvalidSchedule",
    ),
    (
        "Recurring without recurrencyKind",
        1,
        wire(charging_profile_kind="Recurring"),
        TX,
        "InvalidSchedule",
    ),
    ("first period not at 0", 1, wire(period={"start_period": 10}), TX, "InvalidSchedule"),
    (
        "validTo in the past",
        1,
        wire(valid_to=(NOW - timedelta(seconds=1)).isoformat()),
        TX,
        "InvalidValue",
    ),
    (
        "setpoint beyond dischargeLimit",
        1,
        wire(period={"discharge_limit": -3000.0}),
        TX,
        "InvalidValue",
    ),
    ("negative limit with CentralSetpoint", 1, wire(period={"limit": -3000.0}), TX, "InvalidValue"),
    ("naive timestamp", 1, wire(valid_from="2026-11-21T12:00:00"), TX, "InvalidValue"),
    (
        "purpose not offered",
        1,
        wire(charging_profile_purpose="PriorityCharging"),
        TX,
        "UnsupportedParam",
    ),
    (
        "LocalGeneration not offered",
        1,
        wire(charging_profile_purpose="LocalGeneration"),
        TX,
        "UnsupportedParam",
    ),
    *(
        (
            f"{mode} not executed here",
            1,
            wire(period={"operation_mode": mode, "setpoint": None, "limit": 3000.0}),
            TX,
            "UnsupportedParam",
        )
        for mode in ("LocalLoadBalancing", "ExternalSetpoint")
    ),
    (
        "CentralFrequency without its signal curve",
        1,
        wire(period={"operation_mode": "CentralFrequency", "setpoint": None, "limit": 3000.0}),
        TX,
        "NoSignalWattCurve",
    ),
]


@pytest.mark.parametrize(
    ("name", "evse", "profile", "txs", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejections(
    smart: SmartCharging,
    name: str,
    evse: int,
    profile: dict[str, Any],
    txs: dict[int, ActiveTransaction],
    reason: str,
) -> None:
    with pytest.raises(ProfileRejected) as caught:
        smart.install(evse, clean(profile), transactions=txs, now=NOW)
    assert caught.value.reason_code == reason, caught.value
    assert smart.matching(evse_id=None, purpose=None, stack_level=None, profile_ids=None) == []


def test_legacy_negative_limit_is_accepted(smart: SmartCharging) -> None:
    legacy = wire(
        period={"operation_mode": None, "setpoint": None, "discharge_limit": None, "limit": -7000.0}
    )
    smart.install(1, clean(legacy), transactions=TX, now=NOW)
    period = smart.composite(1, now=NOW, duration_s=60, transaction=TX[1], offline_since=None).at(
        NOW
    )
    assert period.setpoint_w == -7000.0


def ids(smart: SmartCharging) -> list[tuple[int, int]]:
    found = smart.matching(evse_id=None, purpose=None, stack_level=None, profile_ids=None)
    return sorted((s.profile.id, s.profile.stack_level) for s in found)


def test_replacement_by_id_and_by_stack_and_purpose(smart: SmartCharging) -> None:
    smart.install(1, wire(1), transactions=TX, now=NOW)
    smart.install(1, wire(1, stack_level=51), transactions=TX, now=NOW)
    assert ids(smart) == [(1, 51)]
    smart.install(1, wire(2, stack_level=51), transactions=TX, now=NOW)
    assert ids(smart) == [(2, 51)]
    smart.install(1, wire(3, stack_level=60), transactions=TX, now=NOW)
    assert ids(smart) == [(2, 51), (3, 60)]


def test_clear_by_id_and_by_criteria(smart: SmartCharging) -> None:
    smart.install(1, wire(1, stack_level=50), transactions=TX, now=NOW)
    smart.install(1, wire(2, stack_level=60), transactions=TX, now=NOW)
    assert not smart.clear(profile_id=9, evse_id=None, purpose=None, stack_level=None)
    assert smart.clear(profile_id=None, evse_id=1, purpose="TxProfile", stack_level=60)
    assert ids(smart) == [(1, 50)]
    assert not smart.clear(
        profile_id=None, evse_id=None, purpose="TxDefaultProfile", stack_level=None
    )
    assert smart.clear(profile_id=1, evse_id=None, purpose=None, stack_level=None)
    assert ids(smart) == []


def test_profiles_survive_a_reopen(tmp_path: Path, smart: SmartCharging) -> None:
    smart.install(1, wire(1), transactions=TX, now=NOW)
    config = StationConfig(
        csms_url="ws://x",
        identity="CS-1",
        security_profile=1,
        password="p" * 16,
        state_dir=tmp_path,
    )
    reopened = SmartCharging(
        config, ProfileStore(open_state_db(tmp_path)), may_discharge=every_evse_bidirectional
    )
    assert ids(reopened) == [(1, 50)]
    # Re-sending the same id and stackLevel after the restart replaces it.
    reopened.install(1, wire(1, period={"setpoint": -3000.0}), transactions=TX, now=NOW)
    period = reopened.composite(1, now=NOW, duration_s=1, transaction=TX[1], offline_since=None).at(
        NOW
    )
    assert period.setpoint_w == -3000.0
    assert ids(reopened) == [(1, 50)]


def test_dynamic_update(smart: SmartCharging) -> None:
    dynamic = wire(5, charging_profile_kind="Dynamic", schedule={"start_schedule": None})
    smart.install(1, clean(dynamic), transactions=TX, now=NOW)
    smart.update_dynamic(
        5, {"setpoint": -4000.0, "discharge_limit": -5000.0}, transactions=TX, now=NOW
    )
    period = smart.composite(1, now=NOW, duration_s=1, transaction=TX[1], offline_since=None).at(
        NOW
    )
    assert (period.setpoint_w, period.discharge_limit_w) == (-4000.0, -5000.0)
    with pytest.raises(ProfileRejected):
        smart.update_dynamic(5, {"setpoint": -6000.0}, transactions=TX, now=NOW)  # < -5000
    with pytest.raises(ProfileRejected):
        smart.update_dynamic(99, {"setpoint": -1.0}, transactions=TX, now=NOW)
    smart.install(1, wire(6, stack_level=70), transactions=TX, now=NOW)
    with pytest.raises(ProfileRejected):
        smart.update_dynamic(6, {"setpoint": -1.0}, transactions=TX, now=NOW)


def test_transaction_end_drops_its_tx_profiles(smart: SmartCharging) -> None:
    smart.install(1, wire(1, transaction_id=None), transactions=TX, now=NOW)
    smart.transaction_ended("tx-1")
    assert ids(smart) == []


def test_invalid_after_offline_duration_removes_for_good(smart: SmartCharging) -> None:
    smart.install(1, wire(1, invalid_after_offline_duration=True), transactions=TX, now=NOW)
    smart.install(1, wire(2, stack_level=60), transactions=TX, now=NOW)
    assert smart.expire_offline(now=NOW + timedelta(seconds=29), offline_since=NOW) == []
    assert smart.expire_offline(now=NOW + timedelta(seconds=30), offline_since=NOW) == [1]
    assert ids(smart) == [(2, 60)]


def test_expired_profiles_are_purged(smart: SmartCharging) -> None:
    smart.install(
        1, wire(1, valid_to=(NOW + timedelta(minutes=5)).isoformat()), transactions=TX, now=NOW
    )
    smart.install(1, wire(2, stack_level=60), transactions=TX, now=NOW)
    assert smart.purge_expired(now=NOW + timedelta(minutes=4)) == []
    assert smart.purge_expired(now=NOW + timedelta(minutes=5)) == [1]
    assert ids(smart) == [(2, 60)]


def test_state_db_refuses_newer_or_corrupt_files(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    open_state_db(newer).execute("PRAGMA user_version=99")
    with pytest.raises(StationStateError, match="newer"):
        open_state_db(newer)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "station.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StationStateError, match="unusable"):
        open_state_db(corrupt)


# --- issue 13 item 5: no discharge for a session without a bidirectional mode -------------

CHARGE_ONLY_CASES = [
    ("CentralSetpoint discharge", wire()),
    (
        "legacy negative limit",
        wire(
            period={
                "operation_mode": None,
                "setpoint": None,
                "discharge_limit": None,
                "limit": -3000.0,
            }
        ),
    ),
    (
        "discharge on phase 2",
        wire(period={"setpoint": 1000.0, "setpoint_l2": -500.0, "discharge_limit": -500.0}),
    ),
]


@pytest.mark.parametrize(
    ("case", "profile"), CHARGE_ONLY_CASES, ids=[c[0] for c in CHARGE_ONLY_CASES]
)
def test_a_discharge_profile_for_a_charge_only_session_is_refused(
    tmp_path: Path, case: str, profile: dict[str, Any]
) -> None:
    smart = open_smart(tmp_path, {1: False}.__getitem__)
    with pytest.raises(ProfileRejected) as refused:
        smart.install(1, profile, transactions=TX, now=NOW)
    assert refused.value.reason_code == "InvalidOperationMode"
    assert smart.matching(evse_id=None, purpose=None, stack_level=None, profile_ids=None) == []
    # the same profile is accepted where the session is bidirectional
    open_smart(tmp_path / "bpt", {1: True}.__getitem__).install(
        1, profile, transactions=TX, now=NOW
    )


def test_a_charge_only_session_still_takes_charging_setpoints_and_limits(tmp_path: Path) -> None:
    smart = open_smart(tmp_path, {1: False}.__getitem__)
    smart.install(
        1, wire(period={"setpoint": 3000.0, "discharge_limit": 0.0}), transactions=TX, now=NOW
    )
    only = {"operation_mode": "ChargingOnly", "setpoint": None, "discharge_limit": None}
    smart.install(
        1, wire(2, stack_level=51, period={**only, "limit": 2000.0}), transactions=TX, now=NOW
    )
    assert len(smart.matching(evse_id=1, purpose=None, stack_level=None, profile_ids=None)) == 2


def test_a_dynamic_update_to_discharge_is_refused_for_a_charge_only_session(
    tmp_path: Path,
) -> None:
    smart = open_smart(tmp_path, {1: False}.__getitem__)
    dynamic = wire(
        charging_profile_kind="Dynamic",
        schedule={"start_schedule": None},
        period={"setpoint": 3000.0, "discharge_limit": 0.0},
    )
    smart.install(1, dynamic, transactions=TX, now=NOW)
    with pytest.raises(ProfileRejected) as refused:
        smart.update_dynamic(
            1, {"setpoint": -3000.0, "discharge_limit": -3000.0}, transactions=TX, now=NOW
        )
    assert refused.value.reason_code == "InvalidOperationMode"
    stored = smart.matching(evse_id=1, purpose=None, stack_level=None, profile_ids=[1])
    assert stored[0].profile.schedule.periods[0].setpoint == 3000.0  # nothing applied
