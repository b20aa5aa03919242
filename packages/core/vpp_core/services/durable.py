"""Frequency services that survive a core restart (the dispatches' rules: ``[dispatch]
resume_after_restart``, ``resume_wait_s``).

On start the core reads its services back from the journal (``journal.ServiceJournal``)
before the API serves. An open service inside its window is resumed when configured to: it
waits (at most ``resume_wait_s``) for its sessions' stations to come back, sends every share
its profile again in full (a station may have dropped it while the core was away) and holds
on; its sessions count as live, so the leftover sweep leaves them alone. Otherwise (past its
window, or not configured to resume) it is closed ``interrupted`` with its report as it was;
its profiles are cleared as the stations come back, by the leftover sweep every core start
runs (``services.leftovers``). Closed services are read back too, for their reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from vpp_core.services.held import HeldService, ServiceStatus
from vpp_core.services.journal import ServiceJournal

__all__ = ["ENDED_KEPT", "ServiceRecorder", "take_back"]

log = logging.getLogger(__name__)
#: Closed services read back at start (their reports stay on the API).
ENDED_KEPT = 100


class ServiceRecorder:
    """Writes services to the journal (when there is one); a failure is logged once per
    streak (the adapter counts each) and the service carries on."""

    def __init__(self, journal: ServiceJournal | None) -> None:
        self._journal = journal
        self._failing = False

    async def save(self, held: HeldService) -> None:
        if self._journal is None:
            return
        try:
            await self._journal.save(held, closed=not held.open)
        except Exception as exc:
            if not self._failing:
                log.error(
                    "service journal: %s not recorded (carrying on): %s", held.service_id, exc
                )
            self._failing = True
        else:
            self._failing = False

    async def load(self) -> Sequence[HeldService]:
        """The journal's services; none (logged) when it cannot be read: every profile of an
        earlier core is then cleared by the leftover sweep."""
        if self._journal is None:
            return ()
        try:
            return await self._journal.load(ended=ENDED_KEPT)
        except Exception as exc:
            log.error("service journal unreadable: no service resumed, leftovers cleared: %s", exc)
            return ()


def take_back(held: HeldService, *, now: datetime, resume: bool) -> bool:
    """Whether ``held``, read back after a restart, is resumed; if it was open and is not,
    it is marked ``interrupted`` (an event says why)."""
    if not held.open:
        return False
    if resume and now < held.request.end:
        held.events.append(f"{now.isoformat()} resumed after a core restart")
        return True
    why = "past its window" if now >= held.request.end else "resume_after_restart is off"
    held.status = ServiceStatus.INTERRUPTED
    held.events.append(
        f"{now.isoformat()} interrupted by a core restart ({why}); its profiles are cleared "
        "as the stations come back"
    )
    return False
