"""Operative / inoperative, for the station and each EVSE (ChangeAvailability, G03/G04).

What the CSMS asked for is kept (and persisted: it survives a restart); what is *in effect*
follows it at once, except on an EVSE with a running transaction, which keeps its state until
the transaction ends (the answer was then ``Scheduled``). An EVSE is in effect operative only
when both the station and the EVSE are. Pure apart from the key-value port.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Protocol

__all__ = ["Availability", "KeyValue"]

_KEY = "availability"


class KeyValue(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class Availability:
    """Requested and effective availability of the station and its EVSEs."""

    def __init__(self, kv: KeyValue, evse_ids: Iterable[int]) -> None:
        self._kv = kv
        stored = json.loads(kv.get(_KEY) or "{}")
        evses = stored.get("evses", {})
        self._station = bool(stored.get("station", True))
        self._evses = {e: bool(evses.get(str(e), True)) for e in evse_ids}
        self._effective = {e: self.requested(e) for e in self._evses}

    def requested(self, evse_id: int) -> bool:
        return self._station and self._evses[evse_id]

    def operative(self, evse_id: int) -> bool:
        """Operative now (an EVSE keeps its state while its transaction runs)."""
        return self._effective[evse_id]

    def station_operative(self) -> bool:
        return self._station

    def knows(self, evse_id: int) -> bool:
        return evse_id in self._evses

    def request(self, operative: bool, evse_id: int | None, *, busy: Collection[int]) -> str:
        """Apply a ChangeAvailability; ``busy`` are the EVSEs with a running transaction.

        Returns the answer: ``Accepted`` (in effect now), ``Scheduled`` (after the running
        transaction(s)) or ``Rejected`` (no such EVSE)."""
        if evse_id is not None and evse_id not in self._evses:
            return "Rejected"
        if evse_id is None:
            self._station = operative
        else:
            self._evses[evse_id] = operative
        self._kv.put(_KEY, json.dumps({"station": self._station, "evses": self._evses}))
        self.settle(busy=busy)
        targets = list(self._evses) if evse_id is None else [evse_id]
        pending = any(self._effective[e] != self.requested(e) for e in targets)
        return "Scheduled" if pending else "Accepted"

    def settle(self, *, busy: Collection[int]) -> list[int]:
        """Bring idle EVSEs to their requested state; returns those whose state changed."""
        changed = []
        for evse_id in self._evses:
            wanted = self.requested(evse_id)
            if evse_id not in busy and self._effective[evse_id] != wanted:
                self._effective[evse_id] = wanted
                changed.append(evse_id)
        return changed
