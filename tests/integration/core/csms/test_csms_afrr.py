"""aFRR end to end over real websockets: the operator's setpoints into the core's API
(``POST /api/v1/services/{id}/afrr-setpoints``), relayed as AFRRSignal to two of our gateways
(the real OCPP station, control law and loop on the simulator's module and EV), whose power
follows at the control loop's ramp; the service reports requested vs delivered per setpoint."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.doubles.sim_gateway import SimGateway, sim_gateway
from tests.doubles.waiting import eventually_async
from tests.integration.core.csms import test_csms_dispatch_eligibility as eligibility
from tests.integration.core.csms.test_csms_foreign_station import PASSWORD, Core, _wait
from tests.unit.core.api.test_api import AUTH, TOKEN
from v2g_gateway.control.config import ControlSection
from v2g_sim.ev import EvSpec
from vpp_core.api import create_api
from vpp_core.api.services import services_router
from vpp_core.dispatch.clock import SystemClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService
from vpp_core.services.manager import FrequencyServices

pytestmark = pytest.mark.integration
core = eligibility.core

CONFIG = DispatchConfig(command_timeout_s=5.0, control_period_s=0.5)
RAMP_W_PER_S = 2000.0
CONTROL = ControlSection(ramp_w_per_s=RAMP_W_PER_S)
#: One setpoint interval of the operator's stream (PICASSO: 4 s).
INTERVAL_S = 4.0


@contextlib.asynccontextmanager
async def api_client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        DispatchRunner(core.fleet, core.csms.commands, SystemClock(), CONFIG) as runner,
        FrequencyServices(core.fleet, core.csms.commands, runner.clock, CONFIG) as services,
    ):
        app = create_api(
            DispatchService(runner), bearer_token=TOKEN, routers=[services_router(services)]
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vpp") as client:
            yield client


async def gateways(
    stack: contextlib.AsyncExitStack, core: Core, tmp_path: Path
) -> list[SimGateway]:
    ev = EvSpec(soc_pct=70.0, max_discharge_w=9_000.0, departure_in_s=10 * 3600.0)
    return [
        await stack.enter_async_context(
            sim_gateway(
                identity,
                core.url,
                tmp_path / identity,
                ev=ev,
                control=CONTROL,
                password=PASSWORD,
                sampled_data_interval_s=0.5,
            )
        )
        for identity in ("FS-21", "FS-21b")
    ]


async def settle(gws: list[SimGateway], each_w: float, *, timeout_s: float) -> float:
    """Seconds until every gateway's module is within 150 W of ``each_w``."""
    t0 = time.monotonic()
    await _wait(lambda: all(abs(g.power_w - each_w) < 150.0 for g in gws), timeout_s)
    return time.monotonic() - t0


async def test_api_setpoints_reach_the_vehicles_as_afrr_signal(core: Core, tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        gws = await gateways(stack, core, tmp_path)
        client = await stack.enter_async_context(api_client(core))
        await _wait(lambda: sum(s.needs_at is not None for s in core.fleet.sessions()) == 2, 20.0)

        body = {"product": "afrr", "capacity_mw": 0.01, "duration_s": 120}
        created = await client.post("/api/v1/services", json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        url = f"/api/v1/services/{created.json()['id']}"

        async def status() -> dict[str, Any]:
            return dict((await client.get(url, headers=AUTH)).json())

        async def holding() -> bool:
            return (await status())["status"] == "holding"

        await eventually_async(holding, timeout_s=20.0)
        service = await status()
        assert service["status"] == "holding", service
        assert [s["profile"] for s in service["shares"]] == ["Accepted", "Accepted"]

        # 6 kW discharge of the 10 kW held: -3 kW each, reached at the 2 kW/s ramp.
        answer = await client.post(f"{url}/afrr-setpoints", json={"power_mw": 0.006}, headers=AUTH)
        assert answer.status_code == 201, answer.text
        assert (answer.json()["signal"], answer.json()["accepted"]) == (-6000, 2)
        took_s = await settle(gws, -3000.0, timeout_s=INTERVAL_S + 4.0)
        assert took_s >= 3000.0 / RAMP_W_PER_S - 0.3  # no faster than the ramp allows
        # ... then 4 kW charge: +2 kW each (a 5 kW swing per vehicle).
        charge = {"power_mw": 0.004, "direction": "charge"}
        answer = await client.post(f"{url}/afrr-setpoints", json=charge, headers=AUTH)
        assert answer.json()["signal"] == 4000
        await settle(gws, 2000.0, timeout_s=INTERVAL_S + 5.0)

        setpoints = (await status())["afrr_setpoints"]
        assert [p["requested_mw"] for p in setpoints] == [-0.006, 0.004]
        assert setpoints[0]["delivered_mw"] == pytest.approx(-0.006, abs=0.0005)
