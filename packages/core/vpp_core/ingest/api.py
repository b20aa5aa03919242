"""``GET /api/v1/regions``: the regional aggregates, for the grid-operator API to include."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from vpp_core.ingest.board import SiteRecordSource
from vpp_core.ingest.errors import TelemetryStoreError
from vpp_core.ingest.regions import RegionState, aggregate_regions

__all__ = ["RegionsOut", "regions_router"]


class RegionsOut(BaseModel):
    at: dt.datetime
    stale_after_s: float
    #: per region; figures cover fresh sites only. Powers in W, ``power_w`` positive into
    #: the EVs, ``available_*_w`` magnitudes.
    regions: list[RegionState]


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
            regions=list(regions),
        )

    return router
