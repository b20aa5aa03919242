"""``vpp_profiles_left`` (the demo's and the e2e test's check that a dispatch cleared every
profile it sent) finds a VPP profile left in a station's own store (issue 13 item 7: it
looked for ``stackLevel`` where the station stores ``stack_level`` and could never fail)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from v2g_gateway.station.profiles import parse_profile
from v2g_gateway.station.store import ProfileStore, open_state_db
from v2g_sim.demo_stack import vpp_profiles_left
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.profiles import ProfileSpec, dispatch_profile

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VPP_LEVEL = DispatchConfig().stack_level


def install(state_dir: Path, *, profile_id: int, stack_level: int) -> None:
    """A profile as the core sends it, stored by the station's own store code."""
    spec = ProfileSpec(
        profile_id=profile_id,
        transaction_id="tx-1",
        stack_level=stack_level,
        valid_from=NOW,
        valid_to=NOW + timedelta(minutes=15),
        max_offline_duration_s=30,
        kind="Absolute",
        legacy_negative_limit=False,
    )
    wire = dispatch_profile(spec, -5000.0)
    db = open_state_db(state_dir)
    try:
        ProfileStore(db).install(parse_profile(wire, evse_id=1, received_at=NOW), wire)
    finally:
        db.close()


def test_a_vpp_profile_left_in_a_station_store_is_found(tmp_path: Path) -> None:
    install(tmp_path, profile_id=700000001, stack_level=VPP_LEVEL)
    install(tmp_path, profile_id=42, stack_level=VPP_LEVEL - 40)  # the site's own, lower
    left = vpp_profiles_left(tmp_path, stack_level=VPP_LEVEL)
    assert [p["id"] for p in left] == [700000001]
    assert left[0]["charging_schedule"][0]["charging_schedule_period"][0]["setpoint"] == -5000.0


def test_a_cleared_store_has_none_left(tmp_path: Path) -> None:
    install(tmp_path, profile_id=700000001, stack_level=VPP_LEVEL)
    db = open_state_db(tmp_path)
    try:
        assert ProfileStore(db).clear(stack_level=VPP_LEVEL, purpose="TxProfile") == 1
    finally:
        db.close()
    assert vpp_profiles_left(tmp_path, stack_level=VPP_LEVEL) == []


def test_a_station_without_a_store_has_none_left(tmp_path: Path) -> None:
    assert vpp_profiles_left(tmp_path / "never-started", stack_level=VPP_LEVEL) == []
