"""Every route of the running core's API needs the bearer token (issue 13 item 6:
``GET /api/v1/regions`` answered 200 to anyone). The routes are read from the live app's own
OpenAPI document, so a route added later is walked without touching this test; routes the
document does not list must be the deliberately public ones (``vpp_core.api.app``)."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.integration.core.test_core_grid_services import TOKEN, running_core
from vpp_core.api.app import create_api
from vpp_core.config import CoreConfig
from vpp_core.ingest.api import regions_router
from vpp_core.ingest.board import SiteBoard

pytestmark = pytest.mark.integration
__all__ = ["running_core"]  # the fixture, imported for this module's tests

#: Served without a token, deliberately (``vpp_core.api.app.PUBLIC_PATHS`` says why).
PUBLIC = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})

BASIC = "Basic " + base64.b64encode(b"grid-operator:" + TOKEN.encode()).decode()
CREDENTIALS: dict[str, dict[str, str]] = {
    "no credential": {},
    "a wrong bearer token": {"Authorization": "Bearer wrong-token-0123456789abc"},
    "the right token as Basic": {"Authorization": BASIC},
    "a bearer of another scheme": {"Authorization": "Digest username=grid-operator"},
    "the token without scheme": {"Authorization": TOKEN},
}


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation in an OpenAPI document."""
    out = []
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "no-such-id", path)
        out.extend((method.upper(), concrete) for method in item if method != "parameters")
    return out


async def test_every_route_of_the_running_api_refuses_requests_without_the_token(
    running_core: CoreConfig,
) -> None:
    assert running_core.api is not None
    base = f"http://127.0.0.1:{running_core.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        document = (await http.get("/openapi.json")).json()  # public: the contract
        walked = operations(document)
        assert ("GET", "/api/v1/regions") in walked  # the ingest's router is included
        assert len(walked) >= 6
        for method, path in walked:
            for what, headers in CREDENTIALS.items():
                answer = await http.request(method, path, headers=headers, json={})
                assert answer.status_code in (401, 403), (method, path, what, answer.text)
                assert "token" in answer.json()["detail"], (method, path, what)
        for path in PUBLIC - {"/docs/oauth2-redirect"}:
            assert (await http.get(path)).status_code == 200, path
        assert (await http.get("/redoc")).status_code == 404
        # and the token still opens every read route
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/api/v1/regions", headers=auth)).status_code == 200
        assert (await http.get("/api/v1/fleet", headers=auth)).status_code == 200


def routes_of(routes: list[Any]) -> list[Any]:
    """Every route, those of included routers too (FastAPI keeps an included router as one
    entry with its ``original_router``)."""
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)
        out.extend(routes_of(included.routes) if included is not None else [route])
    return out


def test_every_route_of_the_app_is_in_the_document_or_deliberately_public() -> None:
    """A route added outside the OpenAPI document (``include_in_schema=False``, a mount)
    would escape the walk above: there is none but the public ones."""
    from vpp_core.api.app import PUBLIC_PATHS

    assert PUBLIC_PATHS == PUBLIC
    app = create_api(
        None,  # type: ignore[arg-type]  # routes are only listed, never called
        bearer_token=TOKEN,
        routers=[regions_router(SiteBoard(), stale_after_s=60)],
    )
    documented = {path for _m, path in operations(app.openapi())}
    paths = []
    for route in routes_of(app.routes):
        path = route.path
        paths.append(path)
        if isinstance(route, APIRoute) and route.include_in_schema:
            assert re.sub(r"\{[^}]+\}", "no-such-id", path) in documented, path
        else:
            assert path in PUBLIC, f"{path} is served outside the document"
    assert "/api/v1/regions" in paths
