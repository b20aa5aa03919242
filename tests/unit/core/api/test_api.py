"""Grid-operator API over httpx's ASGI transport, with the real service, runner and a
scripted fleet (virtual clock): auth, validation, 201/409/404, infeasible requests, reports,
cancel, fleet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.unit.core.dispatch.conftest import ev
from tests.unit.core.dispatch.scripted_fleet import T0, ScriptedFleet, VirtualClock, until
from vpp_core.api import create_api
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    client: httpx.AsyncClient
    fleet: ScriptedFleet
    clock: VirtualClock
    service: DispatchService


async def _api(auto: bool) -> AsyncIterator[Api]:
    clock = VirtualClock(auto=auto)
    fleet = ScriptedFleet(clock)
    for i in range(4):
        fleet.add(f"CS{i}", ev(), site="site-a" if i < 2 else "site-b")
    ids = iter(f"d{i}" for i in range(1, 100))
    async with DispatchRunner(fleet, fleet, clock, DispatchConfig()) as runner:
        service = DispatchService(runner, new_id=lambda: next(ids))
        app = create_api(service, bearer_token=TOKEN)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vpp"
        ) as c:
            yield Api(c, fleet, clock, service)
            for p in service.list():
                runner.cancel(p.dispatch_id)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a in _api(auto=False):
        yield a


@pytest.fixture
async def api_auto() -> AsyncIterator[Api]:
    async for a in _api(auto=True):
        yield a


def body(**kw: Any) -> dict[str, Any]:
    return {"power_mw": 0.02, "direction": "discharge", "duration_s": 300, **kw}


async def test_auth_missing_malformed_and_wrong_tokens(api: Api) -> None:
    r = await api.client.get("/api/v1/fleet")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in r.json()["detail"]
    r = await api.client.get("/api/v1/fleet", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    assert "must be 'Bearer <token>'" in r.json()["detail"]
    r = await api.client.get("/api/v1/fleet", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    assert r.json()["detail"] == "bearer token not accepted"
    assert (await api.client.get("/api/v1/fleet", headers=AUTH)).status_code == 200


async def test_create_returns_201_with_id_and_plan_summary_then_get_shows_progress(
    api: Api,
) -> None:
    r = await api.client.post("/api/v1/dispatches", json=body(power_mw=0.02), headers=AUTH)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["id"] == "d1"
    assert r.headers["location"] == "/api/v1/dispatches/d1"
    plan = out["plan"]
    assert plan["requested_mw"] == pytest.approx(0.02)
    assert plan["committed_mw"] == pytest.approx(0.02)
    assert plan["sessions_used"] == 4
    assert plan["feasible"] is True
    assert plan["expected_tracking_uncertainty_mw"] == pytest.approx(0.02 * 0.05)
    assert out["request"]["start"] == "2026-01-15T12:00:00Z"
    assert (out["request"]["tracking"], out["request"]["tolerance_pct"]) == ("power", 0.0)
    assert plan["tracking"] == "power: commanded never above the target (+0 % tolerance)"
    await until(lambda: api.fleet.calls("set"))
    await api.clock.advance(5)
    await until(lambda: api.service.get("d1").intervals)
    r = await api.client.get("/api/v1/dispatches/d1", headers=AUTH)
    got = r.json()
    assert got["status"] == "running"
    assert sorted(a["station_id"] for a in got["allocations"]) == ["CS0", "CS1", "CS2", "CS3"]
    setpoints = [a["setpoint_w"] for a in got["allocations"]]
    assert sum(setpoints) == pytest.approx(-20_000.0), "power tracking: up to the target only"
    assert got["live_direction"] == "discharge"
    assert got["live_power_mw"] > 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(power_mw=0), "body.power_mw"),
        (body(power_mw=-1), "body.power_mw"),
        (body(direction="sideways"), "body.direction"),
        (body(start="2026-01-15T12:00:00"), "body.start"),
        (body(headroom=1.5), "body.headroom"),
        (body(duration_s=0), "body.duration_s"),
        (body(colour="red"), "body.colour"),
        ({"direction": "discharge"}, "body.power_mw"),
        (body(tracking="speed"), "body.tracking"),
        (body(tracking="energy", max_overshoot_pct=25.5), "body.max_overshoot_pct"),
        (body(max_overshoot_pct=-1), "body.max_overshoot_pct"),
        (body(tolerance_pct=30), "body.tolerance_pct"),
        (body(power_mw=5e-324), "body.power_mw"),  # below the 1 kW minimum
        (body(duration_s=86_401), "body.duration_s"),  # the schema's one-day limit
        (body(start="2026-01-15T11:00:00Z"), "body.start"),  # the service's rule, same shape
        ([1, 2], "body"),
    ],
)
async def test_invalid_requests_get_422_with_reasons(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    r = await api.client.post("/api/v1/dispatches", json=payload, headers=AUTH)
    assert r.status_code == 422
    out = r.json()
    assert set(out) == {"detail", "reasons"}, "one body shape, not nested"
    assert out["detail"] == "invalid request"
    assert field in [x["field"] for x in out["reasons"]], out
    assert all(set(x) == {"field", "reason"} and x["reason"] for x in out["reasons"])
    assert api.service.list() == [], "nothing was started"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{not json", "JSON decode error"), (b'"\xff"', "not JSON: 'utf-8' codec can't decode")],
)
async def test_a_body_that_is_not_json_gets_the_same_422(
    api: Api, content: bytes, reason: str
) -> None:
    r = await api.client.post(
        "/api/v1/dispatches",
        content=content,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 422
    [got] = r.json()["reasons"]
    assert got["field"] == "body"
    assert got["reason"].startswith(reason)
    assert r.json()["detail"] == "invalid request"


async def test_a_bad_query_value_gets_the_same_422(api: Api) -> None:
    r = await api.client.get("/api/v1/dispatches/d1/report?format=xml", headers=AUTH)
    assert r.status_code == 422
    assert r.json() == {
        "detail": "invalid request",
        "reasons": [{"field": "query.format", "reason": "Input should be 'json', 'csv' or 'png'"}],
    }


async def test_energy_tracking_is_accepted_with_its_bound_and_stated(api: Api) -> None:
    payload = body(power_mw=0.02, tracking="energy", max_overshoot_pct=25)
    r = await api.client.post("/api/v1/dispatches", json=payload, headers=AUTH)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["request"]["tracking"], out["request"]["max_overshoot_pct"]) == ("energy", 25.0)
    assert out["plan"]["tracking"] == "energy: catch-up may command up to 25 % above the target"
    assert api.service.get("d1").request.overshoot_frac == 0.25


async def test_infeasible_request_is_accepted_for_its_feasible_part(api: Api) -> None:
    r = await api.client.post("/api/v1/dispatches", json=body(power_mw=1.0), headers=AUTH)
    assert r.status_code == 201
    plan = r.json()["plan"]
    assert plan["feasible"] is False
    assert plan["committed_mw"] == pytest.approx(0.9 * 4 * 10_000 / 1e6)
    assert plan["shortfall_mw"] == pytest.approx(1.0 - 0.036)
    assert plan["message"].startswith("infeasible as requested: accepted for 0.036 MW of 1.000 MW")


async def test_overlap_on_the_same_sessions_is_409(api: Api) -> None:
    assert (
        await api.client.post("/api/v1/dispatches", json=body(site="site-a"), headers=AUTH)
    ).status_code == 201
    r = await api.client.post("/api/v1/dispatches", json=body(), headers=AUTH)
    assert r.status_code == 409
    assert "overlaps dispatch d1" in r.json()["detail"]
    other_site = await api.client.post("/api/v1/dispatches", json=body(site="site-b"), headers=AUTH)
    assert other_site.status_code == 201
    later = (T0 + timedelta(seconds=400)).isoformat()
    assert (
        await api.client.post("/api/v1/dispatches", json=body(start=later), headers=AUTH)
    ).status_code == 201


async def test_conflicting_profile_is_listed_in_the_plan_summary(api_auto: Api) -> None:
    api = api_auto
    api.fleet.stations["CS3"].profiles.append(
        {
            "id": 9,
            "stack_level": 90,
            "charging_profile_purpose": "TxProfile",
            "evse_id": 1,
            "charging_profile_kind": "Absolute",
            "charging_schedule": [],
        }
    )
    r = await api.client.post("/api/v1/dispatches", json=body(duration_s=30), headers=AUTH)
    await api.service.runner.wait(r.json()["id"])
    got = (await api.client.get(f"/api/v1/dispatches/{r.json()['id']}", headers=AUTH)).json()
    [excluded] = got["plan"]["excluded"]
    assert excluded["station_id"] == "CS3"
    assert "stackLevel 90 masks" in excluded["reason"]
    # Once read, a conflict shows in the summary of the next request's 201 at once:
    again = await api.client.post("/api/v1/dispatches", json=body(duration_s=30), headers=AUTH)
    assert [e["station_id"] for e in again.json()["plan"]["excluded"]] == ["CS3"]
    assert again.json()["plan"]["sessions_used"] == 3


async def test_report_as_json_csv_and_png(api_auto: Api) -> None:
    api = api_auto
    r = await api.client.post("/api/v1/dispatches", json=body(duration_s=120), headers=AUTH)
    await api.service.runner.wait("d1")
    rep = (await api.client.get("/api/v1/dispatches/d1/report", headers=AUTH)).json()
    assert rep["schema"] == "vpp.dispatch.report/2"
    assert rep["tracking_mode"] == "power"
    assert rep["tracking"]["max_commanded_overshoot_pct"] == 0.0
    assert rep["status"] == "completed"
    assert rep["target_energy_wh"] == pytest.approx(-20_000 * 120 / 3600)
    assert abs(rep["energy_error_pct"]) < 3.0
    assert len(rep["sessions"]) == 4
    assert set(rep["attribution"]) >= {"dropout_wh", "lag_wh", "headroom_wh"}
    text = (await api.client.get("/api/v1/dispatches/d1/report?format=csv", headers=AUTH)).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(rep["intervals"]) == 24
    assert float(rows[-1]["target_w"]) == -20_000.0
    png = await api.client.get("/api/v1/dispatches/d1/report?format=png", headers=AUTH)
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    compressed = await api.client.get(
        "/api/v1/dispatches/d1/report?format=png&speed=30", headers=AUTH
    )
    assert compressed.content.startswith(b"\x89PNG")
    assert compressed.content != png.content
    bad = await api.client.get("/api/v1/dispatches/d1/report?format=xml", headers=AUTH)
    assert bad.status_code == 422
    slow = await api.client.get("/api/v1/dispatches/d1/report?format=png&speed=0.5", headers=AUTH)
    assert slow.status_code == 422
    assert r.status_code == 201


async def test_delete_cancels_and_clears(api: Api) -> None:
    await api.client.post("/api/v1/dispatches", json=body(duration_s=600), headers=AUTH)
    await until(lambda: api.fleet.calls("set"))
    assert any(api.fleet.profiles_at(s, stack_level=50) for s in api.fleet.stations)
    r = await api.client.delete("/api/v1/dispatches/d1", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert all(api.fleet.profiles_at(s, stack_level=50) == [] for s in api.fleet.stations)


async def test_unknown_dispatch_is_404(api: Api) -> None:
    for path in ("/api/v1/dispatches/nope", "/api/v1/dispatches/nope/report"):
        assert (await api.client.get(path, headers=AUTH)).status_code == 404
    assert (await api.client.delete("/api/v1/dispatches/nope", headers=AUTH)).status_code == 404


async def test_fleet_lists_sessions_with_soc_power_and_departure(api: Api) -> None:
    out = (await api.client.get("/api/v1/fleet", headers=AUTH)).json()
    assert len(out["sessions"]) == 4
    s = out["sessions"][0]
    assert s["soc_pct"] == pytest.approx(70.0)
    assert s["available_discharge_w"] == 10_000.0
    assert s["available_charge_w"] == 11_000.0
    assert s["departure"] is None
    assert out["available_discharge_mw"] == pytest.approx(0.04)
    assert [x["needs_reported_at"] for x in out["sessions"]] == [None] * 4
    scripted = api.fleet.sessions
    api.fleet.sessions = lambda: [replace(s, needs_at=T0) for s in scripted()]  # type: ignore[method-assign]
    out = (await api.client.get("/api/v1/fleet", headers=AUTH)).json()
    assert {x["needs_reported_at"] for x in out["sessions"]} == {"2026-01-15T12:00:00Z"}


async def test_openapi_is_published_with_bearer_security(api: Api) -> None:
    spec = json.loads((await api.client.get("/openapi.json")).text)
    assert {
        "/api/v1/dispatches",
        "/api/v1/dispatches/{dispatch_id}",
        "/api/v1/dispatches/{dispatch_id}/report",
        "/api/v1/fleet",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    post = spec["paths"]["/api/v1/dispatches"]["post"]
    assert {"201", "409", "422", "401", "403"} <= set(post["responses"])


async def test_openapi_documents_the_one_error_shape_and_every_limit(api: Api) -> None:
    spec = json.loads((await api.client.get("/openapi.json")).text)
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert body == error, (path, method)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    props = spec["components"]["schemas"]["DispatchCreate"]["properties"]
    assert (props["power_mw"]["minimum"], props["power_mw"]["maximum"]) == (0.001, 10_000)
    assert (props["duration_s"]["exclusiveMinimum"], props["duration_s"]["maximum"]) == (0, 86_400)
    assert (props["headroom"]["exclusiveMinimum"], props["headroom"]["maximum"]) == (0, 1)


async def test_scheduled_dispatch_can_be_read_and_cancelled_before_it_starts(api: Api) -> None:
    later = (T0 + timedelta(hours=2)).isoformat()
    r = await api.client.post("/api/v1/dispatches", json=body(start=later), headers=AUTH)
    assert r.status_code == 201
    got = (await api.client.get("/api/v1/dispatches/d1", headers=AUTH)).json()
    assert got["status"] == "scheduled"
    assert got["plan"]["committed_mw"] == pytest.approx(0.02)
    rep = await api.client.get("/api/v1/dispatches/d1/report", headers=AUTH)
    assert rep.json()["status"] == "scheduled"
    r = await api.client.delete("/api/v1/dispatches/d1", headers=AUTH)
    assert r.json()["status"] == "cancelled"
    assert api.fleet.calls("set") == []
