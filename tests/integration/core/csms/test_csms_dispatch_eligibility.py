"""Who the CSMS dispatches, and how, over real websockets with foreign stations (the ``ocpp``
library's own v2.1 / v2.0.1 ChargePoint, every frame both ways checked against the OCA
schemas): issue 13 item 5 and issue 18's dispatch side.

- Q01 / issue 13.5: a station whose EV requests ``DC`` (not ``DC_BPT``) while declaring
  maxDischargePower 9000, and one the CSMS sent NotifyAllowedEnergyTransfer ``["DC"]``, are
  excluded from a discharge with their reasons and get no SetChargingProfile at all.
- TC_Q_107 / issue 18: in a mixed fleet a 2.0.1 station is excluded from the discharge (the
  2.1 stations take it) and takes part in a charge dispatch with a 2.0.1-shaped profile (a
  ``limit`` only); the report separates the charge-only part from the bidirectional part.
- TC_K_118: NotifyPriorityCharging is answered, and the session leaves the running dispatch:
  its VPP profile is cleared at once, the other station takes over its share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.foreign_station import ForeignStation
from tests.integration.core.csms.test_csms_foreign_station import (
    PASSWORD,
    Core,
    _dispatch,
    _wait,
    open_core,
    v2x_needs,
)
from vpp_core.dispatch.progress import DispatchProgress
from vpp_core.dispatch.report import DispatchReport
from vpp_core.fleet import StationEntry, hash_password

pytestmark = pytest.mark.integration

EXTRA = ("FS-21b", "FS-21c")
#: OCPP 2.0.1 charging needs: a DC EV (2.0.1 knows no BPT mode nor V2X parameters).
NEEDS_201 = {
    "requested_energy_transfer": "DC",
    "dc_charging_parameters": {
        "ev_max_current": 30,
        "ev_max_voltage": 400,
        "ev_max_power": 11_000,
        "ev_energy_capacity": 60_000,
        "state_of_charge": 60,
    },
}


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with open_core(tmp_path) as running:
        hashed = hash_password(PASSWORD)
        await running.csms.apply_registry(
            StationEntry(i, 1, True, "site-f", "north", hashed) for i in EXTRA
        )
        yield running


def needs_with(mode: str) -> dict[str, Any]:
    """2.1 V2X needs (maxDischargePower 9000) requesting ``mode``."""
    needs = v2x_needs()
    needs["requested_energy_transfer"] = mode
    needs["available_energy_transfer"] = [mode]
    return needs


async def plug_in(core: Core, station: ForeignStation, needs: dict[str, Any]) -> str:
    """Boot, start a transaction, report ``needs`` and meter; returns the transaction id."""
    tx = f"tx-{station.identity}"
    await station.boot()
    await station.start_transaction(tx, None)
    assert (await station.notify_needs(needs)).status == "Accepted"
    station.start_metering()

    def recorded() -> bool:
        session = core.fleet.session(station.identity, tx)
        return session is not None and session.limits.received_at is not None

    await _wait(recorded)
    return tx


def profiles_sent(station: ForeignStation) -> list[dict[str, Any]]:
    return [p for action, p in station.received if action == "SetChargingProfile"]


def first_period(profile: dict[str, Any]) -> dict[str, Any]:
    period: dict[str, Any] = profile["charging_schedule"][0]["charging_schedule_period"][0]
    return period


def exclusions(report: DispatchReport) -> dict[str, str]:
    return {e.key.station_id: e.reason for e in report.excluded}


async def test_a_dc_only_station_is_excluded_and_gets_no_discharge_profile(core: Core) -> None:
    async with (
        ForeignStation("FS-21", url=core.url, password=PASSWORD) as dc_only,
        ForeignStation("FS-21b", url=core.url, password=PASSWORD) as bpt,
        ForeignStation("FS-21c", url=core.url, password=PASSWORD) as restricted,
    ):
        await plug_in(core, dc_only, needs_with("DC"))
        await plug_in(core, bpt, needs_with("DC_BPT"))
        tx_c = await plug_in(core, restricted, needs_with("DC_BPT"))
        allowed = await core.csms.commands.notify_allowed_energy_transfer("FS-21c", tx_c, ["DC"])
        assert allowed.status == "Accepted"

        report = await _dispatch(core, -4_000.0, "dc-only")

        assert report.status == "completed"
        reasons = exclusions(report)
        assert reasons["FS-21"] == "requested energy transfer DC is not bidirectional: charge-only"
        assert reasons["FS-21c"] == (
            "NotifyAllowedEnergyTransfer allowed no bidirectional mode (DC): charge-only"
        )
        assert profiles_sent(dc_only) == []
        assert profiles_sent(restricted) == []
        setpoints = [first_period(p)["setpoint"] for p in profiles_sent(bpt)]
        assert setpoints
        assert all(w < 0 for w in setpoints)
        assert {s.key.station_id for s in report.sessions} == {"FS-21b"}
    for station in (dc_only, bpt, restricted):
        assert station.violations == []


async def test_a_mixed_fleet_discharges_on_21_and_charges_on_201_with_a_201_profile(
    core: Core,
) -> None:
    async with (
        ForeignStation("FS-201", url=core.url, password=PASSWORD, subprotocol="ocpp2.0.1") as old,
        ForeignStation("FS-21", url=core.url, password=PASSWORD) as new_a,
        ForeignStation("FS-21b", url=core.url, password=PASSWORD) as new_b,
    ):
        await plug_in(core, old, NEEDS_201)
        for station in (new_a, new_b):
            await plug_in(core, station, needs_with("DC_BPT"))

        discharge = await _dispatch(core, -6_000.0, "mixed-discharge")

        assert exclusions(discharge)["FS-201"] == (
            "OCPP 2.0.1 station: charge-only (2.0.1 profiles cannot command discharge)"
        )
        assert profiles_sent(old) == []
        for station in (new_a, new_b):
            assert first_period(profiles_sent(station)[-1])["setpoint"] < 0
        roles = {r.role: r for r in discharge.roles}
        assert (
            roles["charge_only"].sessions_considered,
            roles["charge_only"].sessions_dispatched,
        ) == (1, 0)
        assert roles["bidirectional"].sessions_dispatched == 2
        sent_21 = sum(first_period(profiles_sent(s)[0])["setpoint"] for s in (new_a, new_b))
        assert roles["bidirectional"].first_setpoint_w == pytest.approx(sent_21)
        assert roles["charge_only"].first_setpoint_w == 0.0

        len_before = {s.identity: len(profiles_sent(s)) for s in (new_a, new_b)}
        charge = await _dispatch(core, 6_000.0, "mixed-charge")

        assert "FS-201" not in exclusions(charge)
        sent_201 = profiles_sent(old)
        assert len(sent_201) == 1
        # the 2.0.1 shape: a limit per period, nothing 2.0.1 does not know (the frame was
        # validated against the OCA 2.0.1 SetChargingProfileRequest schema on the wire)
        assert set(first_period(sent_201[0])) == {"start_period", "limit"}
        assert first_period(sent_201[0])["limit"] > 0
        assert not {"max_offline_duration", "invalid_after_offline_duration"} & set(sent_201[0])
        assert sent_201[0]["charging_profile_kind"] == "Absolute"
        assert old.connection is not None
        assert len(old.connection.calls("SetChargingProfile")) == 1
        for station in (new_a, new_b):
            assert first_period(profiles_sent(station)[-1])["operation_mode"] == "CentralSetpoint"
        roles = {r.role: r for r in charge.roles}
        assert roles["charge_only"].sessions_dispatched == 1
        assert roles["charge_only"].first_setpoint_w == pytest.approx(
            first_period(sent_201[0])["limit"]
        )
        assert roles["bidirectional"].sessions_dispatched == 2
        charged_21 = [
            first_period(profiles_sent(s)[len_before[s.identity]]) for s in (new_a, new_b)
        ]
        assert roles["bidirectional"].first_setpoint_w == pytest.approx(
            sum(p["setpoint"] for p in charged_21)
        )
        assert all(p["setpoint"] > 0 for p in charged_21)
        assert old.profiles == {}, "cleared at the end of the window"
    for station in (old, new_a, new_b):
        assert station.violations == []


async def test_priority_charging_takes_the_session_out_of_the_running_dispatch(
    core: Core,
) -> None:
    async with (
        ForeignStation("FS-21", url=core.url, password=PASSWORD) as leaving,
        ForeignStation("FS-21b", url=core.url, password=PASSWORD) as staying,
    ):
        tx = await plug_in(core, leaving, needs_with("DC_BPT"))
        await plug_in(core, staying, needs_with("DC_BPT"))
        answers: list[Any] = []

        async def ask_for_priority(progress: DispatchProgress) -> None:
            await _wait(lambda: bool(profiles_sent(leaving)) and bool(profiles_sent(staying)))
            assert leaving.profiles != {}
            request = leaving.calls.NotifyPriorityCharging(transaction_id=tx, activated=True)
            answers.append(await leaving.call(request))  # a CALLERROR would raise here
            await _wait(lambda: leaving.profiles == {})
            assert datetime.now(UTC) < progress.request.end, "cleared at once, not at the end"

        report = await _dispatch(
            core, -8_000.0, "priority", duration_s=4.0, meanwhile=ask_for_priority
        )

        assert answers
        assert type(answers[0]).__name__ == "NotifyPriorityCharging"
        by_station = {s.key.station_id: s for s in report.sessions}
        assert by_station["FS-21"].drop_reason == (
            "priority charging requested by the EV (NotifyPriorityCharging)"
        )
        assert by_station["FS-21b"].drop_reason is None
        # re-planned: the session that stayed took over the other's share (half each before)
        stayed = by_station["FS-21b"]
        assert stayed.first_setpoint_w == pytest.approx(by_station["FS-21"].first_setpoint_w)
        assert stayed.last_setpoint_w < 1.5 * stayed.first_setpoint_w < 0
        session = core.fleet.session("FS-21", tx)
        assert session is not None
        assert session.priority_charging
    for station in (leaving, staying):
        assert station.violations == []
