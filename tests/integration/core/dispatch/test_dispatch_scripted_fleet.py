"""End to end in process: 50 simulated stations (lag, ramp, dead-band EVs), a 15-minute 0.2 MW
discharge on compressed (virtual) time, 10 % of the vehicles unplugging at random mid-window.

Pending the CSMS (vpp_core.csms), the stations are the scripted in-process fleet rather
than OCPP 2.1 over websockets; the runner and everything above it are the production code.
"""

from __future__ import annotations

import functools
import random
from datetime import timedelta

import pytest

from tests.unit.core.dispatch.scripted_fleet import T0, ScriptedFleet, VirtualClock
from v2g_sim.ev import EvSpec
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.runner import DispatchRunner

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("seed", "algorithm"), [(1, "proportional")])
async def test_fifteen_minute_discharge_with_unplugs_delivers_energy_and_clears(
    seed: int, algorithm: str
) -> None:
    rng = random.Random(seed)
    clock = VirtualClock()
    fleet = ScriptedFleet(clock)
    keys = [
        fleet.add(
            f"CS{i:03d}",
            EvSpec(
                soc_pct=rng.uniform(45, 95),
                max_discharge_w=rng.choice([7_000, 9_000, 11_000]),
                min_discharge_w=1_400,
                departure_in_s=rng.uniform(2, 12) * 3600,
                target_soc_pct=80.0,
            ),
            site=f"site-{i % 5}",
            tau_s=rng.uniform(1.0, 5.0),
        )
        for i in range(50)
    ]
    start = T0 + timedelta(seconds=30)
    unplugged = rng.sample(keys, 5)
    for key in unplugged:
        fleet.at(
            start + timedelta(seconds=rng.uniform(60, 840)), functools.partial(fleet.unplug, key)
        )
    published: list[str] = []

    async def publish(topic: str, payload: bytes) -> None:
        published.append(topic)

    req = DispatchRequest(target_w=-200_000.0, start=start, duration_s=900, algorithm=algorithm)  # type: ignore[arg-type]
    async with DispatchRunner(
        fleet, fleet, clock, DispatchConfig(), publish_report=publish
    ) as runner:
        runner.start("e2e", req)
        progress = await runner.wait("e2e")

    report = progress.report
    assert report is not None
    assert report.status == "completed"
    assert report.energy_source == "meter registers"
    assert abs(report.energy_error_pct) <= 2.0, report.energy_error_pct
    assert report.tracking.within_5pct_share >= 0.9
    dropped = {k for k, r in progress.sessions.items() if r.drop_reason == "session ended"}
    assert dropped, "some unplugged vehicles were discharging"
    assert dropped == {k for k in unplugged if progress.sessions[k].profile_sent}
    for station in fleet.stations:
        assert await fleet.get_charging_profiles(station, stack_level=50) == [], station
    assert not report.uncleared
    assert published == ["vpp/v1/dispatch/e2e/report"]
    assert report.attribution.dropout_wh > 0
