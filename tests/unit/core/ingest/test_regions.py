"""Regional aggregates: only fresh sites count; a backlog or a clock running ahead is stale."""

from __future__ import annotations

import datetime as dt

import pytest

from vpp_core.ingest import SiteRecord, aggregate_regions

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def record(
    site: str, region: str, *, age_s: float, received_age_s: float = 0, **kw: object
) -> SiteRecord:
    values: dict[str, object] = {
        "site": site,
        "region": region,
        "stream": "s",
        "seq": 1,
        "at": NOW - dt.timedelta(seconds=age_s),
        "received_at": NOW - dt.timedelta(seconds=received_age_s),
        "chargers": 1,
        "chargers_reporting": 1,
        "sessions_connected": 2,
        "v2x_sessions": 1,
        "available_discharge_w": 10000.0,
        "available_charge_w": 20000.0,
        "power_w": -5000.0,
        "soc_min_pct": 30.0,
        "soc_mean_pct": 50.0,
        "soc_max_pct": 70.0,
        "energy_import_wh": 1.0,
        "energy_export_wh": 2.0,
        "fail_safe": False,
        "fail_safe_chargers": 0,
    }
    values.update(kw)
    return SiteRecord(**values)  # type: ignore[arg-type]


def test_stale_sites_do_not_count_as_available() -> None:
    records = [
        record("a", "north", age_s=5),
        record("b", "north", age_s=120),  # silent for 2 min
        record("c", "north", age_s=5, soc_min_pct=10.0, soc_mean_pct=20.0, sessions_connected=1),
        record("d", "south", age_s=1, fail_safe=True, available_discharge_w=0.0),
    ]
    north, south = aggregate_regions(records, now=NOW, stale_after_s=35)
    assert (north.region, north.sites, north.sites_fresh) == ("north", 3, 2)
    assert north.available_discharge_w == 20000.0
    assert north.sessions_connected == 3
    assert north.soc_min_pct == 10.0
    assert north.soc_mean_pct == pytest.approx((50 * 2 + 20 * 1) / 3)
    assert north.last_summary_at == NOW - dt.timedelta(seconds=5)
    assert (south.sites_fail_safe, south.available_discharge_w) == (1, 0.0)


def test_backlog_after_an_outage_is_not_fresh() -> None:
    """Delivered just now but stamped 10 min ago: history, not availability."""
    [north] = aggregate_regions([record("a", "north", age_s=600)], now=NOW, stale_after_s=35)
    assert north.sites_fresh == 0


def test_site_clock_ahead_does_not_keep_it_fresh() -> None:
    ahead = record("a", "north", age_s=-3600, received_age_s=120)
    [north] = aggregate_regions([ahead], now=NOW, stale_after_s=35)
    assert north.sites_fresh == 0


def test_no_sites_no_regions() -> None:
    assert aggregate_regions([], now=NOW, stale_after_s=35) == []
