"""Aggregating charger states into one site summary (pure: no I/O, time is an argument)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from v2g_common.telemetry import SiteSummary
from v2g_gateway.uplink.ports import ChargerState

__all__ = ["SummaryHeader", "summarize"]


@dataclass(frozen=True, slots=True)
class SummaryHeader:
    """Who is summarizing and how often; the same for every summary of an uplink."""

    site: str
    region: str
    stream: str
    interval_s: float
    chargers: int


def summarize(
    header: SummaryHeader, states: Sequence[ChargerState], *, seq: int, at: datetime
) -> SiteSummary:
    """One summary over the chargers that answered (``states``).

    A charger in fail-safe contributes no available power (it will not follow a setpoint);
    chargers that did not answer contribute nothing at all, so every total is a floor the
    dispatcher can rely on, and ``chargers_reporting`` says how much of the site it covers.
    """
    healthy = [s for s in states if not s.fail_safe]
    socs = [soc for s in states for soc in s.soc_pct]
    return SiteSummary(
        site=header.site,
        region=header.region,
        stream=header.stream,
        seq=seq,
        at=at,
        interval_s=header.interval_s,
        chargers=max(header.chargers, len(states)),
        chargers_reporting=len(states),
        sessions_connected=sum(s.sessions_connected for s in states),
        v2x_sessions=sum(s.v2x_sessions for s in states),
        available_discharge_w=sum(s.available_discharge_w for s in healthy),
        available_charge_w=sum(s.available_charge_w for s in healthy),
        power_w=sum(s.power_w for s in states),
        soc_min_pct=min(socs) if socs else None,
        soc_mean_pct=sum(socs) / len(socs) if socs else None,
        soc_max_pct=max(socs) if socs else None,
        energy_import_wh=sum(s.energy_import_wh for s in states),
        energy_export_wh=sum(s.energy_export_wh for s in states),
        fail_safe=len(healthy) < len(states),
        fail_safe_chargers=len(states) - len(healthy),
    )
