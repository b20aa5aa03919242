"""``[fleet]``: where the fleet state is written behind, and how often."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from v2g_common.config import ConfigSection

__all__ = ["FleetConfig"]


class FleetConfig(ConfigSection):
    #: ``sqlite:///path/fleet.db`` (default back end, WAL) or ``postgresql://user@host/db``.
    database_url: str = "sqlite:////var/lib/vpp-core/fleet.db"
    #: Longest time a change waits in memory before it is written (urgent ones go at once).
    write_interval_s: float = Field(default=0.5, gt=0, le=60)
    #: Cap on queued append-only rows while the database is unreachable (oldest samples
    #: dropped first, then profiles, commands, security events; counted per table).
    max_queued_rows: int = Field(default=200_000, ge=1000)
    #: Samples of each active session's power/energy series kept in memory (all go to the DB).
    samples_in_memory: int = Field(default=30, ge=1, le=10_000)
    #: How often the running core re-reads the station registry (CLI changes take effect).
    registry_refresh_s: float = Field(default=5.0, gt=0)
    #: Where rows the database refused go when it refuses the ``write_quarantine`` table too
    #: (JSON lines; ``vpp_core.fleet.quarantine``).
    quarantine_file: Path = Path("/var/lib/vpp-core/write-quarantine.jsonl")
