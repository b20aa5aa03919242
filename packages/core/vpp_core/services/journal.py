"""The frequency services' journal: what a restarted core needs to take back every open
service, and what its reports are made of (``journal_codec``), kept in the fleet database
(SQL adapter ``vpp_core.fleet.service_journal``; migration 8).

A service is written when it changes: before its first profiles are sent, after each round
of answers, re-plan and clear, each capacity sample (every control period) and each
activation a gateway reports. A failed write is logged once per streak and counted
(``vpp_service_journal_failures_total``); the service carries on. Safety does not rest on
the journal: every restarted core clears the service profile on each EVSE its open services
do not hold, as the station comes back (``services.leftovers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from vpp_core.services.held import HeldService

__all__ = ["ServiceJournal"]


class ServiceJournal(Protocol):
    """Durable service records. Every method raises ``JournalError`` on failure."""

    async def save(self, held: HeldService, *, closed: bool) -> None:
        """Insert or replace the service's row."""
        ...

    async def load(self, *, ended: int) -> Sequence[HeldService]:
        """Every service not closed and the ``ended`` latest closed ones, oldest first."""
        ...
