"""The station as a supervisor service (``name``, ``run(channel)``, ``reload(config)``), the
shape :class:`gateway.edge.supervisor.Supervisor` runs. The daemon's wiring adds one line::

    services.append(StationService(config.station, ev_link=...))
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.edge.station.config import StationConfig
from gateway.edge.station.ports import ControlPort, EvLink, StationClock, SystemClock
from gateway.edge.station.station import ChargingStation

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

    async def run(self, channel: ControlPort) -> None:
        """Run the station on ``channel`` until cancelled."""
        async with ChargingStation(
            self._config, control=channel, ev_link=self._ev_link, clock=self._clock
        ):
            await asyncio.Event().wait()

    def reload(self, config: Any) -> None:
        """SIGHUP: the station's connection settings change only on restart."""
        fresh = getattr(config, "station", None)
        if fresh is not None and fresh != self._config:
            log.warning("SIGHUP: [station] changes take effect on the next restart")
