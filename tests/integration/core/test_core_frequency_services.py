"""The running core serves ``/api/v1/services`` (wired in ``grid_services.py`` beside the
dispatch runner): with no station connected a service is accepted and says it holds nothing,
is listed, and ends on DELETE."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.core.test_core_grid_services import TOKEN, running_core
from vpp_core.config import CoreConfig

pytestmark = pytest.mark.integration
__all__ = ["running_core"]  # the fixture, imported for this module's tests

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_running_core_holds_and_ends_a_service(running_core: CoreConfig) -> None:
    assert running_core.api is not None
    base = f"http://127.0.0.1:{running_core.api.port}/api/v1"
    body = {"product": "fcr", "capacity_mw": 0.1, "duration_s": 900, "direction": "discharge"}
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=AUTH) as http:
        created = await http.post("/services", json=body)
        assert created.status_code == 201, created.text
        service = created.json()
        assert service["plan"]["feasible"] is False
        assert service["plan"]["message"] == (
            "discharge: 0 of 100000 W (headroom 0.90 of 0 W sustainable for 900 s)"
        )
        assert service["shares"] == []

        listed = await http.get("/services")
        assert [s["id"] for s in listed.json()] == [service["id"]]
        ended = await http.delete(f"/services/{service['id']}")
        assert ended.status_code == 200
        assert ended.json()["status"] == "cancelled"
        assert (await http.get("/services/fs-unknown")).status_code == 404
