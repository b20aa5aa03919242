"""The daemon's adapter: the control loop's snapshot as this gateway's charger state."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from v2g_gateway.control.channel import ControlEvent, ControlSnapshot
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.wire import NO_SNAPSHOT
from v2g_gateway.uplink import ChargerLimits, ControlSnapshotSource, severity_of

NOW = 1000.0
LIVE = dataclasses.replace(
    NO_SNAPSHOT,
    monotonic_s=NOW - 0.1,
    cycles=10,
    ev_connected=True,
    power_w=-6000.0,
    soc_pct=64.0,
    energy_import_wh=500.0,
    energy_export_wh=80.0,
    contactor_closed=True,
)
V2X = ChargerLimits(v2x_capable=True, max_discharge_w=7400.0, max_charge_w=11000.0)


class Channel:
    def __init__(self, snap: ControlSnapshot) -> None:
        self.snap = snap

    def snapshot(self) -> ControlSnapshot:
        return self.snap

    def subscribe_events(self) -> asyncio.Queue[ControlEvent]:
        return asyncio.Queue()


def source(snap: ControlSnapshot, limits: ChargerLimits | None = V2X) -> ControlSnapshotSource:
    return ControlSnapshotSource(
        Channel(snap), charger_id="cp-1", limits=lambda: limits, clock=lambda: NOW
    )


async def test_live_snapshot_with_v2x_ev() -> None:
    state = await source(LIVE).read_charger_state()
    assert (state.sessions_connected, state.v2x_sessions) == (1, 1)
    assert (state.available_discharge_w, state.available_charge_w) == (7400.0, 11000.0)
    assert (state.power_w, state.soc_pct) == (-6000.0, (64.0,))
    assert (state.energy_import_wh, state.energy_export_wh) == (500.0, 80.0)
    assert not state.fail_safe


@pytest.mark.parametrize(
    "snap",
    [
        dataclasses.replace(LIVE, fail_safe=True),
        dataclasses.replace(LIVE, trip_code="GROUND_FAULT"),
    ],
)
async def test_fail_safe_or_tripped_offers_nothing(snap: ControlSnapshot) -> None:
    state = await source(snap).read_charger_state()
    assert (state.available_discharge_w, state.available_charge_w) == (0.0, 0.0)
    assert state.fail_safe


async def test_unknown_limits_or_charge_only_ev_offer_no_discharge() -> None:
    unknown = await source(LIVE, limits=None).read_charger_state()
    assert (unknown.v2x_sessions, unknown.available_discharge_w) == (0, 0.0)
    charge_only = ChargerLimits(v2x_capable=False, max_discharge_w=7400, max_charge_w=11000)
    state = await source(LIVE, limits=charge_only).read_charger_state()
    assert (state.available_discharge_w, state.available_charge_w) == (0.0, 11000.0)


@pytest.mark.parametrize(
    "snap", [NO_SNAPSHOT, dataclasses.replace(LIVE, monotonic_s=NOW - 30)], ids=["none", "stale"]
)
async def test_stale_or_missing_snapshot_is_not_reported(snap: ControlSnapshot) -> None:
    with pytest.raises(TimeoutError):
        await source(snap).read_charger_state()


def test_event_severities() -> None:
    assert severity_of(EventCode.GROUND_FAULT) == "critical"
    assert severity_of(EventCode.COMMS_LOSS_FAILSAFE) == "warning"
    assert severity_of(EventCode.FAILSAFE_CLEARED) == "info"
    assert severity_of(EventCode.CONTROL_PROCESS_EXITED) == "critical"
