"""What each station has installed, read ahead of dispatches by a background profile survey.

Before a station takes part in a dispatch its installed TxProfiles must be known (a profile of
the same purpose at a higher stackLevel would mask the VPP's). Reading them inside the first
dispatch doubles its command count; the :class:`ProfileSurvey` reads them in the background
instead, with bounded concurrency, for every connected station not read yet. A dispatch still
reads inline any station the survey has not reached, so correctness never depends on timing.

Knowledge is forgotten when a station disconnects or reconnects (or its sessions vanish: it may
have rebooted or been changed by its local EMS meanwhile) and after any ``Rejected``, so it is
read again. A reconnect is seen from ``SessionState.station_connection`` by whoever looks
first: the survey, a dispatch's conflict check or a preview.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.ports import FleetView, SessionState, StationCommands
from vpp_core.dispatch.profiles import PURPOSE

__all__ = ["InstalledProfiles", "ProfileReadAbandoned", "ProfileSurvey"]

log = logging.getLogger(__name__)
Profiles = list[dict[str, Any]]
#: A station failing the survey is retried after interval x 2^(failures-1), capped here.
MAX_BACKOFF_S = 300.0


class ProfileReadAbandoned(Exception):
    """The read another caller was waiting on was cancelled before the station answered."""


class InstalledProfiles:
    """Station -> TxProfiles read with GetChargingProfiles, shared by the survey and dispatches.

    At most one read per station is in flight: a second caller awaits the first one's answer.
    A read that started before :meth:`forget` returns its answer to its callers but is not
    recorded (it may predate what made us forget).
    """

    def __init__(self, commands: StationCommands) -> None:
        self._commands = commands
        self._known: dict[str, Profiles] = {}
        self._reading: dict[str, asyncio.Future[Profiles]] = {}
        self._epoch: dict[str, int] = {}
        self._connection: dict[str, int] = {}

    def get(self, station_id: str) -> Profiles | None:
        return self._known.get(station_id)

    def known(self, station_id: str) -> bool:
        return station_id in self._known

    def stations(self) -> set[str]:
        return set(self._known)

    def observe(self, sessions: Iterable[SessionState]) -> set[str]:
        """Note which connection each connected session's station is on
        (``SessionState.station_connection``); what was read over an earlier one is
        forgotten. Returns the connected stations."""
        connected: set[str] = set()
        for s in sessions:
            if not s.connected:
                continue
            connected.add(s.station_id)
            if self._connection.get(s.station_id, s.station_connection) != s.station_connection:
                self.forget(s.station_id)
            self._connection[s.station_id] = s.station_connection
        return connected

    def forget(self, station_id: str) -> None:
        """Read the station again before its next dispatch."""
        self._known.pop(station_id, None)
        self._epoch[station_id] = self._epoch.get(station_id, 0) + 1

    async def known_or_read(self, station_id: str) -> Profiles:
        """The station's TxProfiles as known, else :meth:`read` them (a fan-out's later calls
        find what another reader recorded meanwhile, and send nothing)."""
        known = self._known.get(station_id)
        return known if known is not None else await self.read(station_id)

    async def read(self, station_id: str) -> Profiles:
        """Read (or join the read in flight of) the station's installed TxProfiles."""
        pending = self._reading.get(station_id)
        if pending is not None:
            return await asyncio.shield(pending)
        answer: asyncio.Future[Profiles] = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda f: f.exception())  # joiners may all have gone
        self._reading[station_id] = answer
        epoch = self._epoch.get(station_id, 0)
        try:
            profiles = await self._commands.get_charging_profiles(station_id, purpose=PURPOSE)
        except asyncio.CancelledError:
            answer.set_exception(ProfileReadAbandoned(f"read of {station_id} was abandoned"))
            raise
        except Exception as exc:
            answer.set_exception(exc)
            raise
        finally:
            del self._reading[station_id]
        if self._epoch.get(station_id, 0) == epoch:
            self._known[station_id] = profiles
        answer.set_result(profiles)
        return profiles


@dataclass
class _Failure:
    count: int
    retry_at: float  # monotonic seconds


class ProfileSurvey:
    """Background task: every ``profile_survey_interval_s`` read connected stations whose
    profiles are not known, at most ``profile_survey_concurrency`` at once; forget stations
    that disconnected. A failing station is retried with backoff and logged once."""

    def __init__(
        self,
        fleet: FleetView,
        profiles: InstalledProfiles,
        config: DispatchConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.fleet = fleet
        self.profiles = profiles
        self.cfg = config
        self._monotonic = monotonic
        self._sleep = sleep
        self._failures: dict[str, _Failure] = {}
        self.passes = 0  # completed passes (for observers and tests)

    async def run(self) -> None:
        """Survey until cancelled. The poll period is real time, not the dispatch clock.
        A pass that fails (the fleet view failing, say) ends the run; the runner's task
        supervisor logs, counts and restarts it."""
        while True:
            await self.survey_once()
            await self._sleep(self.cfg.profile_survey_interval_s)

    async def survey_once(self) -> None:
        connected = self.profiles.observe(self.fleet.sessions())
        for station in self.profiles.stations() - connected:
            self.profiles.forget(station)
        for station in set(self._failures) - connected:
            del self._failures[station]
        now = self._monotonic()
        due = sorted(st for st in connected if not self.profiles.known(st) and self._due(st, now))
        results = await fan_out(
            [self._reader(st) for st in due],
            concurrency=self.cfg.profile_survey_concurrency,
            timeout_s=self.cfg.command_timeout_s,
        )
        for station, res in zip(due, results, strict=True):
            if isinstance(res, Exception):
                self._failed(station, res)
            elif self._failures.pop(station, None) is not None:
                log.info("profile survey: %s read after earlier failures", station)
        self.passes += 1

    def _reader(self, station: str) -> Callable[[], Awaitable[Profiles]]:
        return lambda: self.profiles.known_or_read(station)

    def _due(self, station: str, now: float) -> bool:
        failure = self._failures.get(station)
        return failure is None or now >= failure.retry_at

    def _failed(self, station: str, exc: Exception) -> None:
        failure = self._failures.setdefault(station, _Failure(0, 0.0))
        failure.count += 1
        backoff_s = min(
            self.cfg.profile_survey_interval_s * 2 ** (failure.count - 1), MAX_BACKOFF_S
        )
        failure.retry_at = self._monotonic() + backoff_s
        if failure.count == 1:  # once per run of failures, not every pass
            log.warning(
                "profile survey: reading %s's installed profiles failed (%r); retrying with "
                "backoff, a dispatch reads it inline meanwhile",
                station,
                exc,
            )
