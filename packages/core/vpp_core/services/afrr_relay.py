"""The operator's aFRR setpoint stream relayed to the stations of a held aFRR service as
OCPP 2.1 ``AFRRSignalRequest`` (one per station: the request has no EVSE, a station applies
it to every EVSE following a CentralFrequency period).

Each setpoint: checked against the contract (``vpp_core.services.afrr.check_setpoint``),
turned into one signal, sent to every station with an accepted share (bounded fan-out, a bad
station never stops the others), recorded with the stations' answers; the setpoint it replaces
gets the fleet's metered power as its ``delivered_w``. A stream that stops for
``[dispatch] afrr_stale_after_s`` is answered by the core itself: signal 0 to every station
(recorded ``stale``), so nobody keeps an old activation (the stations also let a signal lapse
after their own ``afrr_signal_valid_for_s``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vpp_core.dispatch.clock import DispatchClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.ports import CommandResult, FleetView, StationCommands
from vpp_core.services.afrr import AfrrSetpoint, afrr_signal, check_setpoint
from vpp_core.services.allocation import SessionShare
from vpp_core.services.errors import ServiceStateError

if TYPE_CHECKING:
    from vpp_core.services.manager import HeldService

__all__ = ["AfrrRelay"]

log = logging.getLogger(__name__)
#: Setpoints kept per service (a 4 s stream: about 11 hours).
_KEPT = 10_000


class AfrrRelay:
    """Setpoint streams of the aFRR services, by service id."""

    def __init__(
        self,
        fleet: FleetView,
        commands: StationCommands,
        clock: DispatchClock,
        config: DispatchConfig,
    ) -> None:
        self._fleet = fleet
        self._commands = commands
        self._clock = clock
        self._config = config
        self._streams: dict[str, list[AfrrSetpoint]] = {}

    def setpoints(self, service_id: str) -> Sequence[AfrrSetpoint]:
        return self._streams.get(service_id, ())

    async def setpoint(self, held: HeldService, requested_w: float) -> AfrrSetpoint:
        """Relay the operator's ``requested_w`` (signed, negative = discharge)."""
        if held.request.spec.local_frequency:
            raise ServiceStateError(
                f"service {held.service_id} is {held.request.product.value}, not afrr: "
                "it answers the local frequency, not setpoints"
            )
        if not held.open:
            raise ServiceStateError(f"service {held.service_id} is {held.status.value}")
        check_setpoint(held.request, requested_w)
        return await self._relay(held, requested_w, stale=False)

    async def keep_alive(self, held: HeldService) -> None:
        """Signal 0 once the operator's stream has been silent for ``afrr_stale_after_s``."""
        stream = self._streams.get(held.service_id)
        if not stream or stream[-1].signal == 0:
            return
        silent = self._clock.now() - stream[-1].at
        if silent >= timedelta(seconds=self._config.afrr_stale_after_s):
            held.events.append(
                f"aFRR setpoint stream silent for {silent.total_seconds():.0f} s: signal 0 sent"
            )
            await self._relay(held, 0.0, stale=True)

    def close(self, held: HeldService) -> None:
        """The service ended: the last setpoint's delivery is what the fleet does now."""
        stream = self._streams.get(held.service_id)
        if stream and stream[-1].delivered_w is None:
            stream[-1].delivered_w = self._delivered_w(held.holding)

    async def _relay(self, held: HeldService, requested_w: float, *, stale: bool) -> AfrrSetpoint:
        holding = held.holding
        stream = self._streams.setdefault(held.service_id, [])
        if stream and stream[-1].delivered_w is None:
            stream[-1].delivered_w = self._delivered_w(holding)
        now = self._clock.now()
        signal = afrr_signal(requested_w, holding)
        stations = sorted({s.key.station_id for s in holding})
        results = await fan_out(
            [self._call(station, now, signal) for station in stations],
            concurrency=self._config.command_concurrency,
            timeout_s=self._config.command_timeout_s,
        )
        accepted = sum(isinstance(r, CommandResult) and r.status == "Accepted" for r in results)
        if accepted < len(stations):
            log.warning(
                "service %s: AFRRSignal accepted by %d of %d stations",
                held.service_id, accepted, len(stations),
            )  # fmt: skip
        record = AfrrSetpoint(now, requested_w, signal, len(stations), accepted, stale=stale)
        stream.append(record)
        del stream[:-_KEPT]
        return record

    def _call(
        self, station_id: str, now: datetime, signal: int
    ) -> Callable[[], Awaitable[CommandResult]]:
        return lambda: self._commands.afrr_signal(station_id, timestamp=now, signal=signal)

    def _delivered_w(self, holding: Sequence[SessionShare]) -> float:
        """The holding sessions' metered power (W, negative = discharge; baseline 0 W)."""
        keys = {s.key for s in holding}
        return sum(s.present_power_w for s in self._fleet.sessions() if s.key in keys)
