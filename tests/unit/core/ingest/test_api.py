"""``GET /api/v1/regions`` over a real ASGI round trip."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI

from vpp_core.ingest import SiteBoard, SiteRecord, TelemetryStoreError, regions_router

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def record(site: str, region: str) -> SiteRecord:
    return SiteRecord(
        site, region, "s", 1, NOW, NOW, 1, 1, 1, 1, 7000.0, 11000.0, -3000.0,
        50.0, 50.0, 50.0, 1.0, 2.0, False, 0,
    )  # fmt: skip


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://core") as client:
        return await client.get("/api/v1/regions")


async def test_regions_listed_with_units() -> None:
    board = SiteBoard()
    board.load([record("a", "north"), record("b", "north"), record("c", "south")])
    app = FastAPI()
    app.include_router(regions_router(board, stale_after_s=35, clock=lambda: NOW))
    response = await get(app)
    assert response.status_code == 200
    body = response.json()
    assert body["stale_after_s"] == 35
    assert [(r["region"], r["sites"], r["available_discharge_w"]) for r in body["regions"]] == [
        ("north", 2, 14000.0),
        ("south", 1, 7000.0),
    ]


class BrokenSource:
    async def site_records(self) -> list[SiteRecord]:
        raise TelemetryStoreError("database is down")


async def test_store_failure_is_503_not_an_empty_list() -> None:
    app = FastAPI()
    app.include_router(regions_router(BrokenSource(), stale_after_s=35))
    response = await get(app)
    assert response.status_code == 503
    assert "database is down" in response.json()["detail"]
