"""A frequency service over real websockets (issue 19, core half): foreign stations (the
``ocpp`` library's v2.1 / v2.0.1 ChargePoint, every frame both ways checked against the OCA
schemas) receive their share as a LocalFrequency TxProfile while the service holds, and have
it cleared by id at the window's end or when the operator ends it early. A 2.0.1 station is
left out with its reason and receives nothing. A station whose transaction ends mid-window
hands its share to the others (replacement profiles under the same id) and is cleared."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.doubles.foreign_station import ForeignStation
from tests.integration.core.csms import test_csms_dispatch_eligibility as eligibility
from tests.integration.core.csms.test_csms_dispatch_eligibility import (
    NEEDS_201,
    first_period,
    needs_with,
    plug_in,
    profiles_sent,
)
from tests.integration.core.csms.test_csms_foreign_station import PASSWORD, Core, _wait
from vpp_core.dispatch.clock import SystemClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.services.manager import (
    SERVICE_PROFILE_OFFSET,
    FrequencyServices,
    HeldService,
    ServiceStatus,
)
from vpp_core.services.products import Product, ServiceRequest

pytestmark = pytest.mark.integration
#: The fixture: our CSMS with the extra 2.1 stations FS-21b and FS-21c registered.
core = eligibility.core

CONFIG = DispatchConfig(
    command_timeout_s=5.0, profile_id_base=700_000_000, stack_level=50, control_period_s=0.2
)
PROFILE_ID = 700_000_000 + SERVICE_PROFILE_OFFSET + 1
#: 3 x 5 kW each way: v2x_needs() EVs (9 kW discharge, 70 % of 60 kWh) sustain it for 15 min.
CAPACITY_W = 15_000.0
SHARE_CURVE = [
    {"frequency": 49.8, "power": -5_000.0},
    {"frequency": 49.9899, "power": -252.5},
    {"frequency": 49.99, "power": 0.0},
    {"frequency": 50.01, "power": 0.0},
    {"frequency": 50.0101, "power": 252.5},
    {"frequency": 50.2, "power": 5_000.0},
]


async def wait_for(held: HeldService, status: ServiceStatus) -> None:
    await _wait(lambda: held.status is status, 30.0)


def fcr(clock: SystemClock, duration_s: float) -> ServiceRequest:
    start = clock.now() + timedelta(seconds=0.5)
    return ServiceRequest.of(Product.FCR, capacity_w=CAPACITY_W, start=start, duration_s=duration_s)


@dataclass
class Bench:
    stations: list[ForeignStation]
    services: FrequencyServices
    clock: SystemClock


@contextlib.asynccontextmanager
async def bench(core: Core, identities: Sequence[str]) -> AsyncIterator[Bench]:
    """2.1 stations with a bidirectional EV plugged in each, and the frequency services; on
    exit, every frame that crossed the wire both ways was schema-valid."""
    async with contextlib.AsyncExitStack() as stack:
        stations = [
            await stack.enter_async_context(ForeignStation(i, url=core.url, password=PASSWORD))
            for i in identities
        ]
        for station in stations:
            await plug_in(core, station, needs_with("DC_BPT"))
        clock = SystemClock()
        services = FrequencyServices(core.fleet, core.csms.commands, clock, CONFIG)
        await stack.enter_async_context(services)
        # A core just started clears the service profile id on each station once (nothing
        # there: Unknown); the tests below look at what the services send after that.
        evses = {(s.identity, 1) for s in stations}
        await _wait(lambda: evses <= services.leftovers.done, 10.0)
        for station in stations:
            assert clears(station) == [{"charging_profile_id": PROFILE_ID}]
            station.received.clear()
        yield Bench(stations, services, clock)
    for station in stations:
        assert station.violations == []


def clears(station: ForeignStation) -> list[dict[str, Any]]:
    return [p for action, p in station.received if action == "ClearChargingProfile"]


async def test_the_service_reaches_each_21_station_as_local_frequency_and_is_cleared_at_the_end(
    core: Core,
) -> None:
    async with (
        ForeignStation("FS-201", url=core.url, password=PASSWORD, subprotocol="ocpp2.0.1") as old,
        bench(core, ["FS-21", "FS-21b", "FS-21c"]) as b,
    ):
        await plug_in(core, old, NEEDS_201)
        request = fcr(b.clock, duration_s=3.0)

        held = b.services.create(request)
        await wait_for(held, ServiceStatus.HOLDING)

        assert held.plan.feasible
        reasons = {e.key.station_id: e.reason for e in held.plan.excluded}
        assert reasons == {
            "FS-201": "OCPP 2.0.1 station: charge-only (2.0.1 profiles cannot command discharge)"
        }
        assert profiles_sent(old) == []
        for station in b.stations:
            (profile,) = profiles_sent(station)
            assert station.profiles == {PROFILE_ID: profile}, "the station holds it"
            assert profile["stack_level"] == 50
            assert profile["charging_profile_purpose"] == "TxProfile"
            assert profile["transaction_id"] == f"tx-{station.identity}"
            assert profile["valid_to"] == request.end.isoformat().replace("+00:00", "Z")
            assert profile["charging_schedule"][0]["charging_rate_unit"] == "W"
            period = first_period(profile)
            assert period["operation_mode"] == "LocalFrequency"
            assert period["v2x_baseline"] == 0.0
            assert period["v2x_freq_watt_curve"] == SHARE_CURVE
            assert "setpoint" not in period
            assert clears(station) == []

        await wait_for(held, ServiceStatus.ENDED)

        for station in b.stations:
            assert station.profiles == {}, "cleared at the end of the window"
            assert clears(station) == [{"charging_profile_id": PROFILE_ID}]
        assert clears(old) == []
    assert old.violations == []


async def test_ending_a_service_early_clears_its_profiles_before_the_window_ends(
    core: Core,
) -> None:
    async with bench(core, ["FS-21", "FS-21b"]) as b:
        request = fcr(b.clock, duration_s=600.0)
        held = b.services.create(request)
        await wait_for(held, ServiceStatus.HOLDING)
        assert all(PROFILE_ID in s.profiles for s in b.stations)

        ended = await b.services.end(held.service_id)

        assert ended.status is ServiceStatus.CANCELLED
        assert b.clock.now() < request.end
        for station in b.stations:
            assert station.profiles == {}
            assert clears(station) == [{"charging_profile_id": PROFILE_ID}]


async def test_a_transaction_ending_mid_window_moves_its_share_to_the_other_stations(
    core: Core,
) -> None:
    async with bench(core, ["FS-21", "FS-21b", "FS-21c"]) as b:
        leaving, *staying = b.stations
        held = b.services.create(fcr(b.clock, duration_s=600.0))
        await wait_for(held, ServiceStatus.HOLDING)

        await leaving.end_transaction()
        await _wait(
            lambda: bool(clears(leaving)) and all(len(profiles_sent(s)) == 2 for s in staying), 30
        )

        for station in staying:
            replacement = profiles_sent(station)[-1]
            assert station.profiles == {PROFILE_ID: replacement}, "replaced in place"
            curve = first_period(replacement)["v2x_freq_watt_curve"]
            assert (curve[0]["power"], curve[-1]["power"]) == (-7_500.0, 7_500.0)
        assert clears(leaving) == [{"charging_profile_id": PROFILE_ID}]
        assert leaving.profiles == {}
        assert [k.station_id for k in held.dropped] == ["FS-21"]
        assert held.plan.feasible
        await b.services.end(held.service_id)


def connected(core: Core, station: ForeignStation) -> bool:
    return any(s.connected for s in core.fleet.sessions() if s.station_id == station.identity)


async def test_a_restarted_core_clears_an_earlier_cores_service_profile_not_a_live_ones(
    core: Core,
) -> None:
    """Services are not resumed after a restart: the station coming back to the new core has
    the earlier core's profile cleared by id; the station a live service of the new core holds
    keeps that service's profile (same id) and is sent no clear."""
    async with contextlib.AsyncExitStack() as stack:
        returning, live = [
            await stack.enter_async_context(ForeignStation(i, url=core.url, password=PASSWORD))
            for i in ("FS-21", "FS-21b")
        ]
        for station in (returning, live):
            await plug_in(core, station, needs_with("DC_BPT"))
        clock = SystemClock()
        # The earlier core holds a service on both, then is gone without clearing (kill -9).
        async with FrequencyServices(core.fleet, core.csms.commands, clock, CONFIG) as earlier:
            held = earlier.create(fcr(clock, duration_s=600.0))
            await wait_for(held, ServiceStatus.HOLDING)
            await _wait(lambda: {("FS-21", 1), ("FS-21b", 1)} <= earlier.leftovers.done, 10.0)
            assert clears(returning) == clears(live) == [], "its own live service: kept"
        assert all(PROFILE_ID in s.profiles for s in (returning, live)), "left untracked"
        await returning.__aexit__(None, None, None)
        await _wait(lambda: not connected(core, returning), 10.0)

        # The new core: a live service on the station still connected, then FS-21 is back.
        fresh = FrequencyServices(core.fleet, core.csms.commands, clock, CONFIG)
        fresh = await stack.enter_async_context(fresh)
        kept = fresh.create(fcr(clock, duration_s=600.0))
        await wait_for(kept, ServiceStatus.HOLDING)
        assert [s.key.station_id for s in kept.holding] == ["FS-21b"]
        await _wait(lambda: ("FS-21b", 1) in fresh.leftovers.done, 10.0)
        await returning.__aenter__()
        await _wait(lambda: returning.profiles == {}, 10.0)
        # the core counts the clear when its answer arrives, after the station has dropped
        # the profile (on a loaded machine the answer can miss the call's timeout: the
        # sweep's retry is then answered Unknown, which counts too)
        await _wait(lambda: fresh.leftovers.cleared >= 1, 30.0)
        assert fresh.leftovers.cleared == 1, "one profile, counted once"

        assert clears(returning)[0] == {"charging_profile_id": PROFILE_ID}
        assert clears(live) == [], "a live service's profile is not cleared"
        assert live.profiles == {PROFILE_ID: profiles_sent(live)[-1]}
        await fresh.end(kept.service_id)
        assert clears(live) == [{"charging_profile_id": PROFILE_ID}]
    for station in (returning, live):
        assert station.violations == []
