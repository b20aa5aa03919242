"""Station commands across the bus: the coordinator's :class:`BusStationCommands` (a
``StationCommands``) and the CSMS node's :class:`CommandResponder`.

A command is a request on the station's own subject (``vpp.station.<id>.command``), served
only by the node that holds the station's connection, for as long as it holds it. So a
command for a station whose node died, or that is connected nowhere, fails at once with
:class:`StationNotHeld` ("no CSMS node holds its connection"): the dispatch drops the session
with that reason in its plan, it does not wait for a timeout. Errors on the node (the
station's CALLERROR, timeout, closed connection) come back as :class:`RemoteCommandError`
naming the node's exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from vpp_core.cluster.bus import Bus, BusTimeout, NoResponder, Served, station_subject
from vpp_core.dispatch.ports import CommandResult

__all__ = [
    "BusStationCommands",
    "CommandResponder",
    "RemoteCommandError",
    "StationNotHeld",
]

log = logging.getLogger(__name__)
_OPS = (
    "set_charging_profile",
    "clear_charging_profile",
    "update_dynamic_schedule",
    "get_charging_profiles",
    "afrr_signal",
)


class StationNotHeld(Exception):
    """No CSMS node holds the station's connection (nothing was sent)."""

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        super().__init__(f"station {station_id!r} is not connected to any CSMS node")


class RemoteCommandError(Exception):
    """The command failed on the CSMS node (its error type and message)."""


class BusStationCommands:
    """``vpp_core.dispatch.ports.StationCommands`` over the bus (the coordinator's)."""

    def __init__(self, bus: Bus, *, timeout_s: float) -> None:
        self._bus = bus
        self._timeout_s = timeout_s

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: Mapping[str, Any]
    ) -> CommandResult:
        args = {"evse_id": evse_id, "profile": profile}
        return _status(await self._call(station_id, "set_charging_profile", args))

    async def clear_charging_profile(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> CommandResult:
        args = {
            "profile_id": profile_id,
            "evse_id": evse_id,
            "purpose": purpose,
            "stack_level": stack_level,
        }
        return _status(await self._call(station_id, "clear_charging_profile", args))

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, schedule_update: Mapping[str, Any]
    ) -> CommandResult:
        args = {"profile_id": profile_id, "schedule_update": schedule_update}
        return _status(await self._call(station_id, "update_dynamic_schedule", args))

    async def afrr_signal(
        self, station_id: str, *, timestamp: datetime, signal: int
    ) -> CommandResult:
        args = {"timestamp": timestamp.isoformat(), "signal": signal}
        return _status(await self._call(station_id, "afrr_signal", args))

    async def get_charging_profiles(
        self,
        station_id: str,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> list[dict[str, Any]]:
        args = {"evse_id": evse_id, "purpose": purpose, "stack_level": stack_level}
        profiles = await self._call(station_id, "get_charging_profiles", args)
        return list(profiles)

    async def _call(self, station_id: str, op: str, args: Mapping[str, Any]) -> Any:
        request = orjson.dumps({"op": op, "args": args}, default=str)
        try:
            reply = await self._bus.request(
                station_subject(station_id), request, timeout_s=self._timeout_s
            )
        except NoResponder as exc:
            raise StationNotHeld(station_id) from exc
        except BusTimeout as exc:
            raise TimeoutError(f"{station_id}: {op}: {exc}") from exc
        answer = orjson.loads(reply)
        if "error" in answer:
            raise RemoteCommandError(f"{station_id}: {op}: {answer['error']}")
        return answer["ok"]


def _status(result: Mapping[str, Any]) -> CommandResult:
    return CommandResult(status=str(result["status"]), reason=result.get("reason"))


class CommandResponder:
    """Serves each connected station's command subject on its node, with the node's own
    ``StationCommands`` (the CSMS's ``StationCommander``)."""

    def __init__(self, bus: Bus, commands: Any) -> None:
        self._bus = bus
        self._commands = commands
        self._served: dict[str, Served] = {}

    @property
    def stations(self) -> int:
        return len(self._served)

    async def hold(self, station_id: str) -> None:
        if station_id not in self._served:
            handler = self._handler(station_id)
            self._served[station_id] = await self._bus.serve(station_subject(station_id), handler)

    async def release(self, station_id: str) -> None:
        served = self._served.pop(station_id, None)
        if served is not None:
            await served.stop()

    async def release_all(self) -> None:
        for station_id in list(self._served):
            await self.release(station_id)

    def _handler(self, station_id: str) -> Any:
        async def handle(payload: bytes) -> bytes:
            try:
                request = orjson.loads(payload)
                op, args = request["op"], request["args"]
                if op not in _OPS:
                    raise ValueError(f"unknown command {op!r}")
                result = await self._run(station_id, op, args)
            except Exception as exc:  # every failure goes back to the coordinator, named
                return orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
            return orjson.dumps({"ok": result}, default=str)

        return handle

    async def _run(self, station_id: str, op: str, args: dict[str, Any]) -> Any:
        c = self._commands
        if op == "set_charging_profile":
            r = await c.set_charging_profile(station_id, args["evse_id"], args["profile"])
        elif op == "update_dynamic_schedule":
            r = await c.update_dynamic_schedule(
                station_id, args["profile_id"], args["schedule_update"]
            )
        elif op == "clear_charging_profile":
            r = await c.clear_charging_profile(station_id, **args)
        elif op == "afrr_signal":
            when = datetime.fromisoformat(args["timestamp"])
            r = await c.afrr_signal(station_id, timestamp=when, signal=args["signal"])
        else:
            return await c.get_charging_profiles(station_id, **args)
        return {"status": r.status, "reason": r.reason}
