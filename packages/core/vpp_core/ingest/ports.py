"""What the ingest writes and the regions view reads: the latest state of each site."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from v2g_common.telemetry import TelemetryMessage

__all__ = ["SiteRecord", "TelemetryStore"]


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """The last accepted summary of one site. ``at`` is the site's timestamp, ``received_at``
    the core's."""

    site: str
    region: str
    stream: str
    seq: int
    at: datetime
    received_at: datetime
    chargers: int
    chargers_reporting: int
    sessions_connected: int
    v2x_sessions: int
    available_discharge_w: float
    available_charge_w: float
    power_w: float
    soc_min_pct: float | None
    soc_mean_pct: float | None
    soc_max_pct: float | None
    energy_import_wh: float
    energy_export_wh: float
    fail_safe: bool
    fail_safe_chargers: int


class TelemetryStore(Protocol):
    """Idempotent storage of site telemetry.

    ``record_batch`` stores the messages in order in one transaction and returns, per
    message, ``True`` if it was new and ``False`` if the store already had its
    ``(site, stream, seq)`` or a later one of the same stream (a redelivery).
    """

    async def record_batch(
        self, messages: Sequence[TelemetryMessage], *, received_at: datetime
    ) -> list[bool]: ...

    async def site_records(self) -> list[SiteRecord]: ...
