"""Is the fleet ready for a dispatch? Read from the core's ``GET /fleet``, as a grid operator's
tooling would: every plugged EV has a connected session, a SoC and its charging needs.

Why the needs: until ``NotifyEVChargingNeeds`` arrives the core knows no discharge limit for
a session (0 W), so a plan made then leaves it out for the whole window. Waiting for a SoC only
(which the first meter value carries) once let a plan use 8 of 17 discharge-capable sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

__all__ = ["FleetNotReady", "readiness_gaps", "wait_ready"]

POLL_S = 0.5
#: How many late stations a message names before it says "and N more".
NAMED_LATE = 12


class FleetNotReady(RuntimeError):
    """Plugged EVs that had not reported all a plan needs when the wait ended."""

    def __init__(self, gaps: Mapping[str, str], *, of: int, waited_s: float) -> None:
        self.gaps = dict(gaps)
        late = sorted(self.gaps.items())
        named = ", ".join(f"{sid} ({why})" for sid, why in late[:NAMED_LATE])
        more = f" and {len(late) - NAMED_LATE} more" if len(late) > NAMED_LATE else ""
        super().__init__(
            f"{len(late)} of {of} plugged EVs not ready for a dispatch after {waited_s:g} s: "
            f"{named}{more}"
        )


def readiness_gaps(
    sessions: Iterable[Mapping[str, Any]], station_ids: Iterable[str], *, needs: bool = True
) -> dict[str, str]:
    """What each of ``station_ids`` still lacks, from ``GET /fleet``'s sessions: ``{id: why}``,
    empty when all are ready. ``needs=False`` asks for a connected session with a SoC only."""
    connected = {s["station_id"]: s for s in sessions if s["connected"]}
    gaps: dict[str, str] = {}
    for sid in station_ids:
        session = connected.get(sid)
        if session is None:
            gaps[sid] = "no connected session"
        elif session["soc_pct"] is None:
            gaps[sid] = "no SoC yet"
        elif needs and session.get("needs_reported_at") is None:
            gaps[sid] = "no charging needs yet"
    return gaps


async def wait_ready(
    api: httpx.AsyncClient,
    station_ids: Sequence[str],
    *,
    timeout_s: float,
    needs: bool = True,
) -> list[dict[str, Any]]:
    """Poll ``GET /fleet`` until every station of ``station_ids`` is ready (see
    :func:`readiness_gaps`); returns the connected sessions. :class:`FleetNotReady` names the
    late ones when ``timeout_s`` runs out."""
    gaps = {sid: "core not asked yet" for sid in station_ids}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                resp = await api.get("/fleet")
                resp.raise_for_status()
                sessions: list[dict[str, Any]] = resp.json()["sessions"]
                gaps = readiness_gaps(sessions, station_ids, needs=needs)
                if not gaps:
                    return [s for s in sessions if s["connected"]]
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise FleetNotReady(gaps, of=len(station_ids), waited_s=timeout_s) from None
