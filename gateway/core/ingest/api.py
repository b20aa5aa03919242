"""``GET /api/v1/regions``: the regional aggregates, for the grid-operator API to include."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from gateway.core.ingest.board import SiteRecordSource
from gateway.core.ingest.errors import TelemetryStoreError
from gateway.core.ingest.regions import aggregate_regions

__all__ = ["RegionOut", "RegionsOut", "regions_router"]


class RegionOut(BaseModel):
    """One region; power/energy/session/SoC figures cover fresh sites only. Powers in W,
    ``power_w`` positive into the EVs; ``available_*_w`` are magnitudes."""

    region: str
    sites: int
    sites_fresh: int
    sites_fail_safe: int
    sessions_connected: int
    v2x_sessions: int
    available_discharge_w: float
    available_charge_w: float
    power_w: float
    energy_import_wh: float
    energy_export_wh: float
    soc_min_pct: float | None
    soc_mean_pct: float | None
    soc_max_pct: float | None
    last_summary_at: dt.datetime | None


class RegionsOut(BaseModel):
    at: dt.datetime
    stale_after_s: float
    regions: list[RegionOut]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def regions_router(
    source: SiteRecordSource,
    *,
    stale_after_s: float,
    clock: Callable[[], dt.datetime] = _utc_now,
) -> APIRouter:
    """A router with ``GET /api/v1/regions`` reading ``source`` (the ingest's board, or the
    store when the API runs apart from the ingest)."""
    router = APIRouter(prefix="/api/v1", tags=["regions"])

    @router.get("/regions", response_model=RegionsOut)
    async def list_regions() -> RegionsOut:
        try:
            records = await source.site_records()
        except TelemetryStoreError as exc:
            raise HTTPException(
                status_code=503, detail=f"regional state unavailable: {exc}"
            ) from exc
        now = clock()
        regions = aggregate_regions(records, now=now, stale_after_s=stale_after_s)
        return RegionsOut(
            at=now,
            stale_after_s=stale_after_s,
            regions=[RegionOut.model_validate(r, from_attributes=True) for r in regions],
        )

    return router
