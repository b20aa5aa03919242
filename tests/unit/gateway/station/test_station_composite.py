"""CompositeSchedule from tables (OCPP 2.1 K08 merge rules): each case lists the installed
profiles, the moment asked about, and the expected (mode, limit, dischargeLimit, setpoint) in W.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2g_gateway.station.composite import (
    ActiveTransaction,
    CompositePeriod,
    EvseElectrics,
    LocalLimits,
    compose,
    target_power_w,
)
from v2g_gateway.station.profiles import ChargingProfile, parse_profile
from v2g_gateway.station.smart_charging import composite_to_wire

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TX = ActiveTransaction("tx-1", T0 - timedelta(minutes=10))
EVSE = EvseElectrics(evse_id=1, voltage_v=230.0, phases=3)


def period(start: int = 0, **values: Any) -> dict[str, Any]:
    return {"start_period": start, **values}


def profile(
    pid: int,
    purpose: str,
    stack: int,
    periods: list[dict[str, Any]],
    *,
    evse: int = 1,
    kind: str = "Absolute",
    unit: str = "W",
    start: datetime | None = T0,
    duration: int | None = None,
    **extra: Any,
) -> ChargingProfile:
    schedule: dict[str, Any] = {
        "id": pid,
        "charging_rate_unit": unit,
        "charging_schedule_period": periods,
    }
    if start is not None and kind != "Relative":
        schedule["start_schedule"] = start.isoformat()
    if duration is not None:
        schedule["duration"] = duration
    wire = {
        "id": pid,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": kind,
        "charging_schedule": [schedule],
        **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in extra.items()},
    }
    if purpose == "TxProfile":
        wire.setdefault("transaction_id", TX.transaction_id)
    return parse_profile(
        wire,
        evse_id=evse if purpose != "ChargingStationMaxProfile" else 0,
        received_at=T0 - timedelta(hours=1),
    )


SETPOINT: dict[str, Any] = {"operation_mode": "CentralSetpoint"}


@dataclass
class Case:
    name: str
    profiles: list[ChargingProfile]
    at_s: float
    expect: tuple[str, float | None, float | None, float | None]
    offline_since_s: float | None = None
    transaction: ActiveTransaction | None = TX
    extra: dict[str, Any] = field(default_factory=dict)
    local: LocalLimits | None = None


CASES = [
    Case("no profile: charge unlimited", [], 0, ("ChargingOnly", None, None, None)),
    Case(
        "VPP discharge setpoint",
        [profile(1, "TxProfile", 50, [period(setpoint=-7000, discharge_limit=-7000, **SETPOINT)])],
        10,
        ("CentralSetpoint", None, -7000, -7000),
    ),
    Case(
        "higher stackLevel wins within TxProfile",
        [
            profile(1, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)]),
            profile(2, "TxProfile", 60, [period(setpoint=-3000, **SETPOINT)]),
        ],
        10,
        ("CentralSetpoint", None, None, -3000),
    ),
    Case(
        "higher stackLevel outside its window: lower one applies",
        [
            profile(1, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)]),
            profile(2, "TxProfile", 60, [period(setpoint=-3000, **SETPOINT)], duration=60),
        ],
        120,
        ("CentralSetpoint", None, None, -7000),
    ),
    Case(
        "TxProfile beats a higher-stack TxDefaultProfile",
        [
            profile(1, "TxDefaultProfile", 90, [period(limit=11000)], evse=0),
            profile(2, "TxProfile", 1, [period(limit=4000)]),
        ],
        0,
        ("ChargingOnly", 4000, None, None),
    ),
    Case(
        "TxProfile of another transaction is ignored",
        [
            profile(1, "TxDefaultProfile", 0, [period(limit=11000)], evse=0),
            profile(2, "TxProfile", 1, [period(limit=4000)], transaction_id="other"),
        ],
        0,
        ("ChargingOnly", 11000, None, None),
    ),
    Case(
        "EVSE TxDefaultProfile beats station-wide one",
        [
            profile(1, "TxDefaultProfile", 9, [period(limit=11000)], evse=0),
            profile(2, "TxDefaultProfile", 1, [period(limit=7400)], evse=1),
        ],
        0,
        ("ChargingOnly", 7400, None, None),
    ),
    Case(
        "station max caps a charge setpoint and a limit",
        [
            profile(1, "ChargingStationMaxProfile", 0, [period(limit=5000)]),
            profile(2, "TxProfile", 50, [period(setpoint=9000, **SETPOINT)]),
        ],
        0,
        ("CentralSetpoint", 5000, None, 5000),
    ),
    Case(
        "station max dischargeLimit caps a discharge setpoint",
        [
            profile(
                1, "ChargingStationMaxProfile", 0, [period(limit=22000, discharge_limit=-4000)]
            ),
            profile(2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)]),
        ],
        0,
        ("CentralSetpoint", 22000, -4000, -4000),
    ),
    Case(
        "legacy negative limit is a discharge setpoint, reported as one",
        [profile(1, "TxProfile", 50, [period(limit=-7000)])],
        0,
        ("CentralSetpoint", None, -7000, -7000),
    ),
    Case(
        "legacy negative limit within the local limits",
        [profile(1, "TxProfile", 50, [period(limit=-7000)])],
        0,
        ("CentralSetpoint", 11000, -7000, -7000),
        local=LocalLimits(11000, 9000),
    ),
    Case(
        "no profile, local limits: the limit is what the EVSE allows",
        [],
        0,
        ("ChargingOnly", 11000, None, None),
        local=LocalLimits(11000, 0),
    ),
    Case(
        "charge limit above the local one is bounded",
        [profile(1, "TxProfile", 5, [period(limit=22000)])],
        0,
        ("ChargingOnly", 11000, None, None),
        local=LocalLimits(11000, 9000),
    ),
    Case(
        "discharge setpoint without a bidirectional mode: nothing to discharge",
        [profile(1, "TxProfile", 50, [period(setpoint=-4000, discharge_limit=-4000, **SETPOINT)])],
        0,
        ("CentralSetpoint", 11000, 0, 0),
        local=LocalLimits(11000, 0),
    ),
    Case(
        "discharge setpoint beyond what the EV declared",
        [profile(1, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)])],
        0,
        ("CentralSetpoint", 11000, -5000, -5000),
        local=LocalLimits(11000, 5000),
    ),
    Case(
        "ampere limit, 3 phases at 230 V",
        [profile(1, "TxProfile", 5, [period(limit=16)], unit="A")],
        0,
        ("ChargingOnly", 16 * 230 * 3, None, None),
    ),
    Case(
        "ampere limit with numberPhases 1",
        [profile(1, "TxProfile", 5, [period(limit=16, number_phases=1)], unit="A")],
        0,
        ("ChargingOnly", 16 * 230, None, None),
    ),
    Case(
        "per-phase ampere setpoints sum",
        [
            profile(
                1,
                "TxProfile",
                5,
                [period(setpoint=-10, setpoint_l2=-10, setpoint_l3=-5, **SETPOINT)],
                unit="A",
            )
        ],
        0,
        ("CentralSetpoint", None, None, -25 * 230),
    ),
    Case(
        "W TxProfile under an A station max: minimum in watts",
        [
            profile(1, "ChargingStationMaxProfile", 0, [period(limit=10)], unit="A"),
            profile(2, "TxProfile", 5, [period(limit=11000)]),
        ],
        0,
        ("ChargingOnly", 6900, None, None),
    ),
    Case(
        "period boundaries",
        [profile(1, "TxProfile", 5, [period(limit=11000), period(600, limit=3000)])],
        700,
        ("ChargingOnly", 3000, None, None),
    ),
    Case(
        "before validFrom: not yet",
        [
            profile(
                1, "TxDefaultProfile", 5, [period(limit=2000)], valid_from=T0 + timedelta(minutes=5)
            )
        ],
        0,
        ("ChargingOnly", None, None, None),
    ),
    Case(
        "after validTo: gone",
        [
            profile(
                1, "TxDefaultProfile", 5, [period(limit=2000)], valid_to=T0 + timedelta(minutes=5)
            )
        ],
        301,
        ("ChargingOnly", None, None, None),
    ),
    Case(
        "relative: counts from transaction start",
        [
            profile(
                1,
                "TxDefaultProfile",
                5,
                [period(limit=11000), period(900, limit=1000)],
                kind="Relative",
                start=None,
            )
        ],
        # The transaction started 600 s before T0, so T0 + 300 s is 900 s into it.
        300,
        ("ChargingOnly", 1000, None, None),
    ),
    Case(
        "recurring daily: next day, same hour",
        [
            profile(
                1,
                "TxDefaultProfile",
                5,
                [period(limit=3000), period(3600, limit=9000)],
                kind="Recurring",
                recurrency_kind="Daily",
                start=T0 - timedelta(days=3),
            )
        ],
        86400 * 2 + 3700 - 3 * 86400 + 86400,  # one hour and 100 s into a later day
        ("ChargingOnly", 9000, None, None),
    ),
    Case(
        "recurring daily with duration: gap after it",
        [
            profile(
                1,
                "TxDefaultProfile",
                5,
                [period(limit=3000)],
                kind="Recurring",
                recurrency_kind="Daily",
                start=T0 - timedelta(days=1),
                duration=3600,
            )
        ],
        4000,
        ("ChargingOnly", None, None, None),
    ),
    Case(
        "offline: still applies before maxOfflineDuration",
        [
            profile(1, "TxDefaultProfile", 0, [period(limit=11000)], evse=0),
            profile(
                2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)], max_offline_duration=30
            ),
        ],
        29,
        ("CentralSetpoint", None, None, -7000),
        offline_since_s=0,
    ),
    Case(
        "offline: lower stack takes over after maxOfflineDuration",
        [
            profile(1, "TxDefaultProfile", 0, [period(limit=11000)], evse=0),
            profile(
                2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)], max_offline_duration=30
            ),
        ],
        30,
        ("ChargingOnly", 11000, None, None),
        offline_since_s=0,
    ),
    Case(
        "offline: maxOfflineDuration 0 means not while offline",
        [profile(2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)], max_offline_duration=0)],
        0,
        ("ChargingOnly", None, None, None),
        offline_since_s=0,
    ),
    Case(
        "offline: no maxOfflineDuration keeps applying",
        [profile(2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)])],
        3600,
        ("CentralSetpoint", None, None, -7000),
        offline_since_s=0,
    ),
    Case(
        "Idle period",
        [profile(1, "TxProfile", 5, [period(operation_mode="Idle")])],
        0,
        ("Idle", None, None, None),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_composite_table(case: Case) -> None:
    when = T0 + timedelta(seconds=case.at_s)
    offline = None if case.offline_since_s is None else T0 + timedelta(seconds=case.offline_since_s)
    schedule = compose(
        case.profiles,
        evse=EVSE,
        start=when,
        duration_s=60,
        transaction=case.transaction,
        offline_since=offline,
        local=case.local,
    )
    got = schedule.at(when)
    assert (got.mode, got.limit_w, got.discharge_limit_w, got.setpoint_w) == pytest.approx(
        case.expect
    ), f"{case.name}: {got}"


def test_composite_periods_follow_breakpoints() -> None:
    """One schedule over an hour: a 7 kW discharge window from a stack-50 TxProfile on top of
    an 11 kW default, a stack-60 override for 10 minutes in the middle, ending at validTo."""
    profiles = [
        profile(1, "TxDefaultProfile", 0, [period(limit=11000)], evse=0),
        profile(
            2,
            "TxProfile",
            50,
            [period(setpoint=-7000, **SETPOINT)],
            valid_from=T0 + timedelta(minutes=10),
            valid_to=T0 + timedelta(minutes=40),
        ),
        profile(
            3,
            "TxProfile",
            60,
            [period(setpoint=-2000, **SETPOINT)],
            start=T0 + timedelta(minutes=20),
            duration=600,
        ),
    ]
    schedule = compose(profiles, evse=EVSE, start=T0, duration_s=3600, transaction=TX)
    got = [
        (int((p.start - T0).total_seconds()), p.mode, p.limit_w, p.setpoint_w)
        for p in schedule.periods
    ]
    assert got == [
        (0, "ChargingOnly", 11000, None),
        (600, "CentralSetpoint", None, -7000),
        (1200, "CentralSetpoint", None, -2000),
        (1800, "CentralSetpoint", None, -7000),
        (2400, "ChargingOnly", 11000, None),
    ]


def test_offline_expiry_is_a_breakpoint() -> None:
    profiles = [
        profile(2, "TxProfile", 50, [period(setpoint=-7000, **SETPOINT)], max_offline_duration=30)
    ]
    schedule = compose(
        profiles,
        evse=EVSE,
        start=T0,
        duration_s=120,
        transaction=TX,
        offline_since=T0 - timedelta(seconds=10),
    )
    assert [(int((p.start - T0).total_seconds()), p.setpoint_w) for p in schedule.periods] == [
        (0, -7000),
        (20, None),
    ]


@pytest.mark.parametrize(
    ("period_values", "charge_w", "expected"),
    [
        (CompositePeriod(T0, "CentralSetpoint", None, -7000, -7000), 11000, -7000),
        (CompositePeriod(T0, "ChargingOnly", 4000, None, None), 11000, 4000),
        (CompositePeriod(T0, "ChargingOnly", 20000, None, None), 11000, 11000),
        (CompositePeriod(T0, "ChargingOnly", None, None, None), 7400, 7400),
        (CompositePeriod(T0, "Idle", None, None, None), 11000, 0),
        (CompositePeriod(T0, "ChargingOnly", None, None, -5000), 11000, -5000),
    ],
)
def test_target_power(period_values: CompositePeriod, charge_w: float, expected: float) -> None:
    assert target_power_w(period_values, charge_w=charge_w) == expected


def test_composite_to_wire_in_amperes() -> None:
    profiles = [
        profile(
            1,
            "TxProfile",
            5,
            [period(limit=6900), period(600, setpoint=-3450, operation_mode="CentralSetpoint")],
        )
    ]
    local = LocalLimits(6900 * 2, 6900)
    schedule = compose(profiles, evse=EVSE, start=T0, duration_s=900, transaction=TX, local=local)
    wire = composite_to_wire(schedule, unit="A", electrics=EVSE)
    assert wire["charging_rate_unit"] == "A"
    assert wire["duration"] == 900
    assert wire["schedule_start"] == T0.isoformat()
    assert wire["charging_schedule_period"] == [
        {"start_period": 0, "operation_mode": "ChargingOnly", "limit": 10.0},
        {
            "start_period": 600,
            "operation_mode": "CentralSetpoint",
            "limit": 20.0,
            "discharge_limit": -10.0,
            "setpoint": -5.0,
        },
    ]


def test_composite_to_wire_legacy_always_has_a_limit() -> None:
    """OCPP 2.0.1 (only ``limit``): no profile is the local limit, not a made-up 1 MW; a
    legacy negative limit goes back out as it came."""
    local = LocalLimits(11000, 9000)
    idle = compose([], evse=EVSE, start=T0, duration_s=60, local=local)
    assert composite_to_wire(idle, unit="W", electrics=EVSE, legacy=True)[
        "charging_schedule_period"
    ] == [{"start_period": 0, "limit": 11000.0}]
    legacy = [profile(1, "TxProfile", 50, [period(limit=-3000)])]
    schedule = compose(legacy, evse=EVSE, start=T0, duration_s=60, transaction=TX, local=local)
    assert composite_to_wire(schedule, unit="W", electrics=EVSE, legacy=True)[
        "charging_schedule_period"
    ] == [{"start_period": 0, "limit": -3000.0}]
    assert composite_to_wire(schedule, unit="W", electrics=EVSE)["charging_schedule_period"] == [
        {
            "start_period": 0,
            "operation_mode": "CentralSetpoint",
            "limit": 11000.0,
            "discharge_limit": -3000.0,
            "setpoint": -3000.0,
        }
    ]


def test_composite_to_wire_needs_local_limits() -> None:
    with pytest.raises(ValueError, match="no limit"):
        composite_to_wire(compose([], evse=EVSE, start=T0, duration_s=60), unit="W", electrics=EVSE)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["TxProfile", "TxDefaultProfile"]),
            st.integers(0, 5),
            st.floats(-11000, 11000, allow_nan=False),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    ),
    st.floats(0, 11000, allow_nan=False),
    st.floats(-11000, 0, allow_nan=False),
)
def test_station_max_bounds_every_setpoint(
    tx_periods: list[tuple[str, int, float, bool]], max_w: float, max_discharge_w: float
) -> None:
    """Safety property: whatever the Tx profiles ask, the composite setpoint stays inside the
    ChargingStationMaxProfile's [dischargeLimit, limit]."""
    profiles = [
        profile(
            100,
            "ChargingStationMaxProfile",
            0,
            [period(limit=max_w, discharge_limit=max_discharge_w)],
        )
    ]
    for i, (purpose, stack, value, as_setpoint) in enumerate(tx_periods):
        values = {"setpoint": value, **SETPOINT} if as_setpoint else {"limit": value}
        profiles.append(
            profile(
                i + 1, purpose, stack, [period(**values)], evse=1 if purpose == "TxProfile" else 0
            )
        )
    got = compose(profiles, evse=EVSE, start=T0, duration_s=60, transaction=TX).at(T0)
    power = target_power_w(got, charge_w=11000.0)
    assert max_discharge_w - 1e-9 <= power <= max_w + 1e-9
    if got.setpoint_w is not None:
        assert max_discharge_w - 1e-9 <= got.setpoint_w <= max_w + 1e-9
    if got.limit_w is not None:
        assert got.limit_w <= max_w + 1e-9
