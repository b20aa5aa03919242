"""Clearing the service profiles an earlier core left on the stations.

After a restart (a kill -9 included) the stations may still hold an earlier core's
LocalFrequency profiles (which discharge on a frequency dip) until ``validTo``: of services
this core resumed (their sessions are live: left alone), and of services it did not (closed
``interrupted``), or that the journal could not name. So, as each station comes back after
this core starts (boot or reconnect: its sessions turn connected, seen as the dispatch
journal's sweep sees them, ``vpp_core.dispatch.recovery``), the service profile id of each of
its sessions' EVSEs is cleared by id, once, unless a live service holds that session (its
profile, same id, is then this core's own). A TxProfile ends with its transaction, so an
EVSE without a session holds none to clear; nor does a 2.0.1 station (LocalFrequency is 2.1
only). A session being cleared is claimed (the services' ``busy``) so no new service plans
it while the clear is in flight. A clear that fails is retried each round while the station
stays connected; an EVSE is logged once, in one line per round for all that newly failed. An
answer ``Unknown`` (nothing there) is as good as ``Accepted``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import timedelta

from vpp_core.dispatch.clock import DispatchClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.eligibility import OCPP_201
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import CommandResult, FleetView, StationCommands
from vpp_core.dispatch.recovery import CLEARED, clear_by_id, sessions_by_key

__all__ = ["LeftoverProfiles"]

log = logging.getLogger(__name__)
_Evse = tuple[str, int]
#: How many failing EVSEs a warning names (the rest are counted).
_SHOWN = 3


class LeftoverProfiles:
    """``run()`` for the core's life: each round (``interrupted_clear_retry_s``), clear the
    service profile on the EVSEs of the stations back since the last round."""

    def __init__(
        self,
        fleet: FleetView,
        commands: StationCommands,
        clock: DispatchClock,
        config: DispatchConfig,
        *,
        profile_id: Callable[[SessionKey], int],
        live: Callable[[], Collection[SessionKey]],
    ) -> None:
        """``live``: the sessions this core's open services hold."""
        self._fleet, self._commands, self._clock, self._config = fleet, commands, clock, config
        self._profile_id = profile_id
        self._live = live
        #: EVSEs done since this core started (cleared, or held by a live service).
        self.done: set[_Evse] = set()
        #: Sessions whose clear is in flight (no new service may plan them meanwhile).
        self.clearing: set[SessionKey] = set()
        self.cleared = 0
        self._failing: set[_Evse] = set()

    async def run(self) -> None:
        retry = timedelta(seconds=self._config.interrupted_clear_retry_s)
        while True:
            await self.sweep()
            await self._clock.sleep_until(self._clock.now() + retry)

    async def sweep(self) -> None:
        """One round: the sessions on connected stations whose EVSE is not done yet."""
        live = set(self._live())
        due = []
        for key, session in sessions_by_key(self._fleet).items():
            evse = (key.station_id, key.evse_id)
            if not session.connected or session.ocpp_version == OCPP_201 or evse in self.done:
                continue
            if key in live:
                self.done.add(evse)  # the live service's own profile: it clears it itself
            else:
                due.append(key)
        if not due:
            return
        self.clearing.update(due)  # claimed before the first await: no service plans them
        try:
            results = await clear_by_id(
                self._commands, self._config, {k: self._profile_id(k) for k in due}
            )
        finally:
            self.clearing.difference_update(due)
        self._note(results)

    def _note(self, results: dict[SessionKey, CommandResult | Exception]) -> None:
        cleared = 0
        failed: list[tuple[SessionKey, CommandResult | Exception]] = []
        for key, result in results.items():
            evse = (key.station_id, key.evse_id)
            if isinstance(result, CommandResult) and result.status in CLEARED:
                self.done.add(evse)
                self._failing.discard(evse)
                cleared += result.status == "Accepted"
            elif evse not in self._failing:  # retried next round while connected
                self._failing.add(evse)
                failed.append((key, result))
        self.cleared += cleared
        if failed:
            self._log_failed(failed)
        if cleared:
            log.warning("cleared %d frequency-service profiles left by an earlier core", cleared)

    def _log_failed(self, failed: list[tuple[SessionKey, CommandResult | Exception]]) -> None:
        """One line per round, not one per EVSE: after a restart of a core with thousands of
        stations that do not answer, a line each would flood the journal."""
        shown = ", ".join(
            f"{key.station_id}/{key.evse_id} ({result!r})" for key, result in failed[:_SHOWN]
        )
        more = f" and {len(failed) - _SHOWN} more" if len(failed) > _SHOWN else ""
        log.warning(
            "service profile not cleared after a restart on %d EVSE(s), retrying each round"
            " while connected (%d failing in all): %s%s",
            len(failed), len(self._failing), shown, more,
        )  # fmt: skip
