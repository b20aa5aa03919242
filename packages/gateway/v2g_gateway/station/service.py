"""The station as a supervisor service (``name``, ``run(channel)``, ``reload(config)``), the
shape :class:`v2g_gateway.supervisor.Supervisor` runs. The daemon's wiring adds one line::

    services.append(StationService(config.station, ev_link=...))

A Reset of the whole station from the CSMS sets :attr:`StationService.restart_requested`
once the station has ramped to 0 W and ended its transactions; the supervisor then stops the
control loop (contactor open) and exits for systemd to restart the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from v2g_gateway.control.ports import EvSession
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.ports import ControlPort, EvLink, StationClock, SystemClock
from v2g_gateway.station.station import ChargingStation

__all__ = ["StationService"]

log = logging.getLogger(__name__)


class StationService:
    name = "station"

    def __init__(
        self,
        config: StationConfig,
        *,
        ev_link: EvLink | None = None,
        clock: StationClock | None = None,
    ) -> None:
        self._config = config
        self._ev_link = ev_link
        self._clock = clock or SystemClock()
        self._station: ChargingStation | None = None
        #: Set when the CSMS reset the station: the supervisor restarts the gateway.
        self.restart_requested = asyncio.Event()

    async def run(self, channel: ControlPort) -> None:
        """Run the station on ``channel`` until cancelled, next to an EV link that has a life
        of its own (an ISO 15118 SECC process; it contains its own failures)."""
        if not isinstance(self._ev_link, EvSession):
            await self._run_station(channel)
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._ev_link.run(), name="ev-link")
            await self._run_station(channel)

    async def _run_station(self, channel: ControlPort) -> None:
        async with ChargingStation(
            self._config,
            control=channel,
            ev_link=self._ev_link,
            clock=self._clock,
            on_reset=self._restart,
        ) as station:
            self._station = station
            try:
                await asyncio.Event().wait()
            finally:
                self._station = None

    async def _restart(self) -> None:
        log.warning("OCPP Reset: asking the supervisor for a restart")
        self.restart_requested.set()
        await asyncio.Event().wait()  # the supervisor cancels this service

    def ev_limits(self) -> tuple[float, float] | None:
        """(max charge W, max discharge W) the first EVSE's EV allows now, as the control loop
        gets them; ``None`` while the station is not running."""
        station = self._station
        if station is None:
            return None
        return station.ev_limits(self._config.evses[0].id)

    def reload(self, config: Any) -> None:
        """SIGHUP: the station's connection settings change only on restart."""
        fresh = getattr(config, "station", None)
        if fresh is not None and fresh != self._config:
            log.warning("SIGHUP: [station] changes take effect on the next restart")
