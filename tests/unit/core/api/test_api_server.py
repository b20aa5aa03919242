"""The API on a real uvicorn on loopback, in the test's event loop; and its config section."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.unit.core.dispatch.conftest import ev
from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from vpp_core.api import create_api
from vpp_core.api.config import ApiConfig
from vpp_core.api.server import ApiServer
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService

TOKEN = "loopback-token-0123456789"


async def test_dispatch_over_real_http_on_loopback() -> None:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    fleet.add("CS1", ev())
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
        app = create_api(DispatchService(runner), bearer_token=TOKEN)
        async with ApiServer(app, host="127.0.0.1", port=0) as server:
            base = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as c:
                r = await c.post(
                    "/api/v1/dispatches",
                    json={"power_mw": 0.005, "direction": "discharge", "duration_s": 60},
                )
                assert r.status_code == 201
                await until(lambda: fleet.calls("set"))
                assert (await c.get(f"/api/v1/dispatches/{r.json()['id']}")).json()[
                    "status"
                ] == "running"
                assert (
                    await c.get("/api/v1/fleet", headers={"Authorization": "Bearer nope"})
                ).status_code == 403
                assert (await c.get("/openapi.json")).status_code == 200
                r = await c.delete(f"/api/v1/dispatches/{r.json()['id']}")
                assert r.json()["status"] == "cancelled"
    assert fleet.profiles_at("CS1", stack_level=50) == []


def test_api_config_reads_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert ApiConfig(bearer_token_file=token_file).read_token() == TOKEN
    token_file.write_text("short")
    with pytest.raises(ValueError, match=">= 16 characters"):
        ApiConfig(bearer_token_file=token_file).read_token()


def test_create_api_refuses_an_empty_token() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        create_api(None, bearer_token="")  # type: ignore[arg-type]
