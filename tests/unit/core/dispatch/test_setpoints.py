"""Which setpoints a re-plan sends: dead-bands hold small steps back unless the setpoints left
as they are would put the fleet above the contract's ceiling; reductions go first."""

from __future__ import annotations

from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.setpoints import commanded_w, setpoint_changes

CONFIG = DispatchConfig(setpoint_deadband_w=200.0, fleet_deadband_frac=0.1)


def _records(*setpoints_w: float) -> list[SessionRecord]:
    return [
        SessionRecord(SessionKey(f"CS{i}", 1, f"tx{i}"), setpoint_w=w, profile_sent=True)
        for i, w in enumerate(setpoints_w)
    ]


def _changes(records: list[SessionRecord], new_w: list[float], ceiling_w: float) -> list[float]:
    alloc = {r.key: w for r, w in zip(records, new_w, strict=True)}
    chosen = setpoint_changes(
        records, alloc, sign=-1.0, target_w=-10_000.0, ceiling_w=ceiling_w, config=CONFIG
    )
    return [new for _, new in chosen]


def test_small_steps_within_the_ceiling_stay_held_back() -> None:
    records = _records(-5_000.0, -5_000.0)
    assert _changes(records, [-4_900.0, -5_100.0], ceiling_w=10_000.0) == []


def test_small_steps_that_would_leave_the_fleet_above_the_ceiling_are_all_sent() -> None:
    """The target stepped down 300 W: each session's 150 W step is inside its dead-band and
    their sum inside the fleet's, but left alone the fleet would stay 300 W above it."""
    records = _records(-5_000.0, -5_000.0, -0.5)
    sent = _changes(records, [-4_850.0, -4_850.0, 0.0], ceiling_w=9_700.0)
    assert sorted(sent) == [-4_850.0, -4_850.0, 0.0]


def test_sub_watt_trims_go_out_when_the_ceiling_needs_them() -> None:
    records = _records(-5_000.4, -5_000.4)
    assert _changes(records, [-5_000.0, -5_000.0], ceiling_w=10_000.0) == [-5_000.0, -5_000.0]


def test_reductions_go_first() -> None:
    records = _records(-2_000.0, -8_000.0)
    assert _changes(records, [-6_000.0, -4_000.0], ceiling_w=10_000.0) == [-4_000.0, -6_000.0]


def test_commanded_counts_only_sessions_held() -> None:
    held, gone = _records(-3_000.0, -4_000.0)
    gone.drop_reason = "session ended"
    assert commanded_w([held, gone], [(held, -3_500.0)], sign=-1.0) == 3_500.0
