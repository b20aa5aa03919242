"""Regional aggregates over the latest site states (pure: ``now`` is an argument)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from vpp_core.ingest.ports import SiteRecord

__all__ = ["RegionState", "aggregate_regions", "is_fresh"]


@dataclass(frozen=True, slots=True)
class RegionState:
    """One region. Power, energy, session and SoC figures cover the *fresh* sites only, so a
    site that went silent never props up the available discharge the dispatcher sees."""

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
    last_summary_at: datetime | None


def is_fresh(record: SiteRecord, *, now: datetime, stale_after_s: float) -> bool:
    """Fresh when the summary is recent by the site's clock *and* was not received long ago;
    a backlog delivered after an outage is not fresh, nor is a site whose clock runs ahead."""
    stamped = min(record.at, record.received_at)
    return (now - stamped).total_seconds() <= stale_after_s


def aggregate_regions(
    records: Iterable[SiteRecord], *, now: datetime, stale_after_s: float
) -> list[RegionState]:
    """One :class:`RegionState` per region, sorted by region name."""
    by_region: dict[str, list[SiteRecord]] = defaultdict(list)
    for record in records:
        by_region[record.region].append(record)
    return [
        _region(name, sites, now=now, stale_after_s=stale_after_s)
        for name, sites in sorted(by_region.items())
    ]


def _region(
    name: str, sites: Sequence[SiteRecord], *, now: datetime, stale_after_s: float
) -> RegionState:
    fresh = [s for s in sites if is_fresh(s, now=now, stale_after_s=stale_after_s)]
    with_soc = [s for s in fresh if s.soc_mean_pct is not None and s.sessions_connected > 0]
    weight = sum(s.sessions_connected for s in with_soc)
    return RegionState(
        region=name,
        sites=len(sites),
        sites_fresh=len(fresh),
        sites_fail_safe=sum(1 for s in fresh if s.fail_safe),
        sessions_connected=sum(s.sessions_connected for s in fresh),
        v2x_sessions=sum(s.v2x_sessions for s in fresh),
        available_discharge_w=sum(s.available_discharge_w for s in fresh),
        available_charge_w=sum(s.available_charge_w for s in fresh),
        power_w=sum(s.power_w for s in fresh),
        energy_import_wh=sum(s.energy_import_wh for s in fresh),
        energy_export_wh=sum(s.energy_export_wh for s in fresh),
        soc_min_pct=min((s.soc_min_pct for s in fresh if s.soc_min_pct is not None), default=None),
        soc_mean_pct=(
            sum((s.soc_mean_pct or 0.0) * s.sessions_connected for s in with_soc) / weight
            if weight
            else None
        ),
        soc_max_pct=max((s.soc_max_pct for s in fresh if s.soc_max_pct is not None), default=None),
        last_summary_at=max((s.at for s in sites), default=None),
    )
