"""``/api/v1/services`` over httpx's ASGI transport, with the real FrequencyServices over a
scripted fleet (virtual clock): the bearer guard, 201 + Location, 422 naming each field,
404, an infeasible request held for its feasible part, DELETE clearing, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.unit.core.api.test_api import AUTH, TOKEN
from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from v2g_sim.ev import EvSpec
from vpp_core.api import create_api
from vpp_core.api.service_report import service_report_router
from vpp_core.api.services import services_router
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService
from vpp_core.services.manager import FrequencyServices


@dataclass
class Api:
    client: httpx.AsyncClient
    fleet: ScriptedFleet
    clock: VirtualClock
    services: FrequencyServices


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    clock = VirtualClock(auto=False)
    fleet = ScriptedFleet(clock)
    for i in range(2):  # 2 x 10 kW discharge / 11 kW charge, 60 kWh at 70 %
        fleet.add(f"CS{i}", EvSpec(soc_pct=70.0, min_discharge_w=0.0, min_charge_w=0.0))
    config = DispatchConfig()
    async with (
        DispatchRunner(fleet, fleet, clock, config) as runner,
        FrequencyServices(fleet, fleet, clock, config) as services,
    ):
        # the first-connection clears of a just-started core claim the sessions meanwhile
        await until(lambda: {("CS0", 1), ("CS1", 1)} <= services.leftovers.done, timeout_s=20)
        fleet.log.clear()
        routers = [services_router(services), service_report_router(services)]
        app = create_api(DispatchService(runner), bearer_token=TOKEN, routers=routers)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vpp") as client:
            yield Api(client, fleet, clock, services)


async def test_every_services_route_needs_the_token(api: Api) -> None:
    body = {"product": "fcr", "capacity_mw": 0.01, "duration_s": 600}
    assert (await api.client.post("/api/v1/services", json=body)).status_code == 401
    assert (await api.client.get("/api/v1/services")).status_code == 401
    assert (await api.client.get("/api/v1/services/x")).status_code == 401
    assert (await api.client.delete("/api/v1/services/x")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await api.client.get("/api/v1/services", headers=wrong)).status_code == 403
    assert api.fleet.calls("set") == []


async def test_create_get_and_end_a_service(api: Api) -> None:
    body = {"product": "fcr", "capacity_mw": 0.01, "duration_s": 600}
    created = await api.client.post("/api/v1/services", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    out = created.json()
    assert created.headers["Location"] == f"/api/v1/services/{out['id']}"
    assert out["request"]["deadband_mhz"] == 10.0
    assert out["request"]["full_activation_mhz"] == 200.0
    assert out["request"]["endurance_s"] == 900.0
    assert out["plan"]["feasible"] is True
    assert [d["committed_mw"] for d in out["plan"]["directions"]] == [
        pytest.approx(0.01),
        pytest.approx(0.01),
    ]

    async def holding() -> dict[str, object]:
        got = await api.client.get(f"/api/v1/services/{out['id']}", headers=AUTH)
        assert got.status_code == 200
        return dict(got.json())

    await until(lambda: len(api.fleet.calls("set")) == 2, timeout_s=20)
    got = await holding()
    assert got["status"] == "holding"
    assert got["holding_mw"] == {"discharge": pytest.approx(0.01), "charge": pytest.approx(0.01)}
    listed = await api.client.get("/api/v1/services", headers=AUTH)
    assert [s["id"] for s in listed.json()] == [out["id"]]

    ended = await api.client.delete(f"/api/v1/services/{out['id']}", headers=AUTH)
    assert ended.status_code == 200
    assert ended.json()["status"] == "cancelled"
    assert {s["cleared"] for s in ended.json()["shares"]} == {"Accepted"}
    assert api.fleet.profiles_at("CS0", stack_level=50) == []


async def test_an_infeasible_service_is_held_for_what_the_fleet_can_sustain(api: Api) -> None:
    body = {"product": "fcr", "capacity_mw": 1.0, "duration_s": 600, "direction": "discharge"}
    created = await api.client.post("/api/v1/services", json=body, headers=AUTH)
    assert created.status_code == 201
    plan = created.json()["plan"]
    assert plan["feasible"] is False
    (d,) = plan["directions"]
    assert d["committed_mw"] == pytest.approx(0.018)
    assert d["shortfall_mw"] == pytest.approx(0.982)
    assert plan["message"] == (
        "discharge: 18000 of 1000000 W (headroom 0.90 of 20000 W sustainable for 900 s)"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"product": "fcr", "capacity_mw": -1, "duration_s": 600}, ["body.capacity_mw"]),
        ({"product": "xyz", "capacity_mw": 1, "duration_s": 600}, ["body.product"]),
        (
            {"product": "fcr", "capacity_mw": 1, "duration_s": 600, "deadband_mhz": 300},
            ["body.full_activation_mhz"],
        ),
        (
            {"product": "fcr", "capacity_mw": 1, "duration_s": 600, "nominal_hz": 55},
            ["body.nominal_hz"],
        ),
        (
            {"product": "fcr", "capacity_mw": 1, "duration_s": 600, "start": "2026-12-03T12:00:00"},
            ["body.start"],
        ),
        ({"product": "fcr", "capacity_mw": 1, "duration_s": 600, "extra": 1}, ["body.extra"]),
    ],
)
async def test_bad_requests_are_422_naming_the_field(
    api: Api, body: dict[str, object], fields: list[str]
) -> None:
    answer = await api.client.post("/api/v1/services", json=body, headers=AUTH)
    assert answer.status_code == 422
    detail = answer.json()
    reasons = detail.get("reasons") or detail["detail"]["reasons"]
    assert [r["field"] for r in reasons] == fields
    assert all(r["reason"] for r in reasons)
    assert api.fleet.calls("set") == []


async def test_unknown_service_is_404(api: Api) -> None:
    for method in ("GET", "DELETE"):
        answer = await api.client.request(method, "/api/v1/services/fs-nope", headers=AUTH)
        assert answer.status_code == 404
        assert answer.json()["detail"] == "no frequency service fs-nope"


async def test_openapi_documents_the_services_routes(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    assert set(doc["paths"]["/api/v1/services"]) == {"get", "post"}
    assert set(doc["paths"]["/api/v1/services/{service_id}"]) == {"get", "delete"}
    post = doc["paths"]["/api/v1/services"]["post"]
    assert {"201", "401", "403", "422"} <= set(post["responses"])
    assert "ServiceCreate" in doc["components"]["schemas"]


async def create(api: Api, product: str) -> str:
    """A service of ``product`` on both stations, its profiles sent."""
    sets = len(api.fleet.calls("set"))
    body = {"product": product, "capacity_mw": 0.01, "duration_s": 600}
    created = await api.client.post("/api/v1/services", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    await until(lambda: len(api.fleet.calls("set")) == sets + 2, timeout_s=20)
    return str(created.json()["id"])


async def test_afrr_setpoints_are_relayed_and_reported(api: Api) -> None:
    service_id = await create(api, "afrr")
    url = f"/api/v1/services/{service_id}/afrr-setpoints"
    answer = await api.client.post(url, json={"power_mw": 0.005}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    out = answer.json()
    assert (out["requested_mw"], out["signal"], out["stations"]) == (-0.005, -5000, 2)
    assert out["delivered_mw"] is None
    assert sorted(st for st, _ in api.fleet.calls("afrr")) == ["CS0", "CS1"]
    charge = {"power_mw": 0.002, "direction": "charge"}
    assert (await api.client.post(url, json=charge, headers=AUTH)).json()["signal"] == 2000
    got = (await api.client.get(f"/api/v1/services/{service_id}", headers=AUTH)).json()
    setpoints = got["afrr_setpoints"]
    assert [p["requested_mw"] for p in setpoints] == [-0.005, 0.002]
    assert setpoints[0]["delivered_mw"] is not None
    assert setpoints[1]["delivered_mw"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"power_mw": 0.02}, "body.power_mw"),  # beyond the 0.01 MW held
        ({"power_mw": -1}, "body.power_mw"),
        ({"power_mw": 0.001, "direction": "up"}, "body.direction"),
        ({"power_mw": 0.001, "extra": 1}, "body.extra"),
    ],
)
async def test_bad_afrr_setpoints_are_422_naming_the_field(
    api: Api, body: dict[str, object], field: str
) -> None:
    service_id = await create(api, "afrr")
    url = f"/api/v1/services/{service_id}/afrr-setpoints"
    answer = await api.client.post(url, json=body, headers=AUTH)
    assert answer.status_code == 422
    assert [r["field"] for r in answer.json()["reasons"]] == [field]
    assert api.fleet.calls("afrr") == []


async def test_afrr_setpoints_to_another_product_or_an_ended_service_are_409(api: Api) -> None:
    service_id = await create(api, "fcr")
    url = f"/api/v1/services/{service_id}/afrr-setpoints"
    answer = await api.client.post(url, json={"power_mw": 0.001}, headers=AUTH)
    assert answer.status_code == 409
    assert "is fcr, not afrr" in answer.json()["detail"]
    await api.client.delete(f"/api/v1/services/{service_id}", headers=AUTH)
    afrr_id = await create(api, "afrr")
    await api.client.delete(f"/api/v1/services/{afrr_id}", headers=AUTH)
    url = f"/api/v1/services/{afrr_id}/afrr-setpoints"
    answer = await api.client.post(url, json={"power_mw": 0.001}, headers=AUTH)
    assert answer.status_code == 409
    assert answer.json()["detail"] == f"service {afrr_id} is cancelled"
    missing = "/api/v1/services/fs-nope/afrr-setpoints"
    assert (await api.client.post(missing, json={"power_mw": 0}, headers=AUTH)).status_code == 404
    assert api.fleet.calls("afrr") == []
