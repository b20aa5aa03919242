"""End to end over real OCPP 2.1: the real CSMS (vpp_core.csms, websockets on loopback,
security profile 1) and its live fleet state, the DispatchRunner, and 50 light-weight simulated
stations (``ocpp_station.OcppStation``) with lag/ramp/dead-band EVs. A 15-minute 0.2 MW discharge
on time compressed 60x, in power tracking (the default), 10 % of the vehicles unplugging at
random mid-window: the fleet discharge the stations are commanded never exceeds the target
(sampled at the stations throughout), delivered energy within +-2 % of target, each session
that ended mid-window reported with its energy to the Ended reading (the simulator's registers,
within 0.5 %), and afterwards GetChargingProfiles shows no profile at the VPP's stackLevel on
any station.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.core.dispatch.ocpp_station import OcppStation
from v2g_sim.ev import EvSpec
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.dispatch.clock import ScaledClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.fleet import FleetState, StationEntry, hash_password

pytestmark = pytest.mark.integration

PASSWORD = "e2e-station-password-01"
N_STATIONS = 50
SPEED = 60.0


async def test_fifteen_minutes_over_ocpp_with_unplugs() -> None:
    rng = random.Random(5)
    clock = ScaledClock(start=datetime.now(UTC), speed=SPEED)
    password_hash = hash_password(PASSWORD)
    entries = [
        StationEntry(f"CS{i:03d}", 1, True, f"site-{i % 5}", "north", password_hash)
        for i in range(N_STATIONS)
    ]
    fleet = FleetState()
    fleet.set_entries(entries)
    config = CsmsConfig(
        host="127.0.0.1",
        port=0,
        allow_security_profile_1=True,
        ping_interval_s=0,
        subprotocols=["ocpp2.1"],
        command_timeout_s=10,
    )
    stations = [
        OcppStation(
            e.station_id,
            EvSpec(
                soc_pct=rng.uniform(45, 95),
                max_discharge_w=rng.choice([7_000, 9_000, 11_000]),
                min_discharge_w=1_400,
                departure_in_s=rng.uniform(2, 12) * 3600,
                target_soc_pct=80.0,
            ),
            clock,
            tau_s=rng.uniform(1.0, 5.0),
        )
        for e in entries
    ]
    async with CsmsServer(config, fleet, clock=clock.now) as csms, asyncio.TaskGroup() as tg:
        stop = asyncio.Event()
        ready = [asyncio.Event() for _ in stations]
        url = f"ws://127.0.0.1:{csms.port}/ocpp"
        for st, ev in zip(stations, ready, strict=True):
            tg.create_task(
                st.run(url, PASSWORD, ready=ev, stop=stop), name=f"station-{st.identity}"
            )
        async with asyncio.timeout(30):
            await asyncio.gather(*(ev.wait() for ev in ready))
        start = clock.now() + timedelta(seconds=30)
        for st in rng.sample(stations, N_STATIONS // 10):
            st.unplug_at = start + timedelta(seconds=rng.uniform(60, 840))
        assert len(fleet.sessions()) == N_STATIONS

        req = DispatchRequest(target_w=-200_000.0, start=start, duration_s=900)
        assert req.tracking == "power"
        commanded_w: list[float] = []  # fleet discharge the stations apply, magnitude

        async def sample_commands() -> None:
            while True:
                now = clock.now()
                commanded_w.append(-sum(st.commanded_w(now) for st in stations))
                await clock.sleep_until(now + timedelta(seconds=2))

        async with DispatchRunner(fleet, csms.commands, clock, DispatchConfig()) as runner:
            sampler = tg.create_task(sample_commands(), name="command-sampler")
            runner.start("e2e-ocpp", req)
            async with asyncio.timeout(900 / SPEED + 60):
                progress = await runner.wait("e2e-ocpp")
            sampler.cancel()
        leftovers = {
            st.identity: await csms.commands.get_charging_profiles(st.identity, stack_level=50)
            for st in stations
        }
        stop.set()

    report = progress.report
    assert report is not None
    assert report.status == "completed", progress.events
    assert report.energy_source == "meter registers"
    assert abs(report.energy_error_pct) <= 2.0, (report.energy_error_pct, report.attribution)
    unplugged = {st.identity for st in stations if st.unplug_at is not None}
    dropped = {
        k.station_id for k, r in progress.sessions.items() if r.drop_reason == "session ended"
    }
    assert dropped <= unplugged
    assert dropped, "some unplugged vehicles were discharging"
    assert len(commanded_w) > 200, "sampled throughout the window"
    assert max(commanded_w) <= 200_000.0 + 1e-6, "power tracking: never commanded above target"
    assert max(commanded_w) >= 0.99 * 200_000.0, "the loop fills up to the target"
    ended = {s.key.station_id: s for s in report.sessions if s.ended_at is not None}
    assert set(ended) == dropped
    assert set(report.ended_before_clear) == {s.key for s in ended.values()}
    tails = []
    for st in stations:
        if st.identity in ended:
            truth_wh = st.session_energy_wh
            assert ended[st.identity].metered_energy_wh == pytest.approx(truth_wh, rel=0.005)
            assert st.last_periodic_at is not None
            assert st.unplug_at is not None
            tails.append((st.unplug_at - st.last_periodic_at).total_seconds())
    assert max(tails) > 2.0, "some session ended well after its last periodic reading"
    assert leftovers == {st.identity: [] for st in stations}, (
        "no profile left at the VPP stackLevel"
    )
    assert not report.uncleared
    assert all(not st.errors for st in stations), [st.errors for st in stations if st.errors][:3]
