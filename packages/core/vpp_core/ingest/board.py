"""The latest state of every site, in memory: what the metrics collector and the regions
endpoint read without touching the database on every scrape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from vpp_core.ingest.ports import SiteRecord

__all__ = ["SiteBoard", "SiteRecordSource"]


class SiteRecordSource(Protocol):
    """Where the regions view reads site states from (the board, or the store itself)."""

    async def site_records(self) -> list[SiteRecord]: ...


class SiteBoard:
    """Latest :class:`SiteRecord` per site; only the ingest writes it."""

    def __init__(self) -> None:
        self._sites: dict[str, SiteRecord] = {}

    def load(self, records: Iterable[SiteRecord]) -> None:
        for record in records:
            self.put(record)

    def put(self, record: SiteRecord) -> None:
        self._sites[record.site] = record

    def snapshot(self) -> list[SiteRecord]:
        return list(self._sites.values())

    async def site_records(self) -> list[SiteRecord]:
        return self.snapshot()

    def __len__(self) -> int:
        return len(self._sites)
