"""The simulator's control socket: a Unix socket speaking JSON lines, and its clients.

Request: ``{"cmd": "plug-in", "device_id": 1, ...}``; response: ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. Commands: ``status``, ``plug-in``, ``plug-out``, ``fault``,
``clear``, ``sensor-error``, ``drive``, ``i2c``, ``contactor``, ``ev-needs``, and the
site-wide ``step`` (advance the models) and ``grid`` (the site's grid frequency from now on).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from v2g_sim.charger import SENSOR_ADDRESS, SimContactor, SimulatedCharger
from v2g_sim.control_client import (
    ControlError,
    RemoteEvLink,
    RemoteI2cBus,
    SimControlClient,
)
from v2g_sim.ev import EvSpec
from v2g_sim.grid_frequency import GridFrequency

__all__ = [
    "ControlError",
    "ControlServer",
    "RemoteEvLink",
    "RemoteI2cBus",
    "SimControlClient",
    "handle_request",
]

_EV_FIELDS = {f.name for f in fields(EvSpec)}
_SETTLE_STEP_S = 0.05
_SETTLE_MAX_S = 120.0


def _charger(chargers: Mapping[int, SimulatedCharger], req: Mapping[str, Any]) -> SimulatedCharger:
    device_id = int(req.get("device_id", min(chargers)))
    if device_id not in chargers:
        raise ControlError(f"no simulated charger with device id {device_id}")
    return chargers[device_id]


def _plug_in(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    ev_args = dict(req.get("ev") or {})
    unknown = set(ev_args) - _EV_FIELDS
    if unknown:
        raise ControlError(f"unknown EV fields: {sorted(unknown)}")
    c.plug_in(EvSpec(**ev_args), now=datetime.now(UTC))
    return c.status()


def _drive(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    """Commissioning helper: set the module to ``power_w``; with ``settle`` fast-forward the
    model until the output is within ``tolerance_w`` of it."""
    c.model.command_setpoint(float(req["power_w"]))
    if req.get("settle"):
        tolerance = float(req.get("tolerance_w", 0.05))
        for _ in range(int(_SETTLE_MAX_S / _SETTLE_STEP_S)):
            if abs(c.model.power_w - c.model.effective_setpoint_w()) <= tolerance:
                break
            c.model.step(_SETTLE_STEP_S)
    return c.status()


def _i2c(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    data = c.i2c.transfer(
        int(req.get("address", SENSOR_ADDRESS)),
        bytes(req.get("write", [])),
        int(req.get("read", 0)),
    )
    return {"data": list(data)}


def _sensor_error(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    c.sensor.gain_error = float(req.get("gain_error", c.sensor.gain_error))
    c.sensor.offset_error_w = float(req.get("offset_error_w", c.sensor.offset_error_w))
    return c.status()


def _plug_out(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    c.plug_out()
    return c.status()


def _fault(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    c.model.inject_fault(str(req["kind"]))
    return c.status()


def _clear(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    kind = req.get("kind")
    c.model.clear_fault(None if kind is None else str(kind))
    return c.status()


def _contactor(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    """``closed``: true closes the output contactor, false opens it (output cut at once)."""
    closed = req["closed"]
    if not isinstance(closed, bool):
        raise ControlError("'closed' must be true or false")
    contactor = SimContactor(c.model)
    if closed:
        contactor.close()
    else:
        contactor.open()
    return c.status()


def _ev_needs(c: SimulatedCharger, req: Mapping[str, Any]) -> dict[str, Any]:
    """The plugged-in EV's declared V2X needs (``null`` without an EV)."""
    needs = c.charging_needs()
    if needs is None:
        return {"needs": None}
    data = asdict(needs)
    data["departure"] = needs.departure.isoformat() if needs.departure else None
    return {"needs": data}


_HANDLERS: dict[str, Callable[[SimulatedCharger, Mapping[str, Any]], dict[str, Any]]] = {
    "status": lambda c, r: c.status(),
    "plug-in": _plug_in,
    "plug-out": _plug_out,
    "fault": _fault,
    "clear": _clear,
    "sensor-error": _sensor_error,
    "drive": _drive,
    "i2c": _i2c,
    "contactor": _contactor,
    "ev-needs": _ev_needs,
}


def _grid(chargers: Mapping[int, SimulatedCharger], req: Mapping[str, Any]) -> dict[str, Any]:
    """Every module on the line (one site) sees the same frequency from now on: a step to
    ``freq_hz``, a ramp to it over ``ramp_s``, or a replayed ``trace`` ([[t_s, freq_hz], ...]
    from now); ``noise_hz`` (optional) sets the Gaussian noise."""
    for c in chargers.values():
        m = c.model
        source = m.grid or GridFrequency(nominal_hz=m.spec.grid_freq_hz, seed=m.seed)
        if "noise_hz" in req:
            source = replace(source, noise_hz=float(req["noise_hz"]))
        if "trace" in req:
            samples = [(float(t), float(f)) for t, f in req["trace"]]
            source = source.replay(samples, at_s=m.now_s)
        elif "freq_hz" in req:
            to_hz, ramp_s = float(req["freq_hz"]), float(req.get("ramp_s", 0.0))
            if ramp_s > 0:
                source = source.ramp(at_s=m.now_s, to_hz=to_hz, over_s=ramp_s)
            else:
                source = source.step(at_s=m.now_s, to_hz=to_hz)
        m.grid = source
    return {"grid_freq_hz": [round(c.model.grid_freq_hz, 4) for c in chargers.values()]}


def handle_request(
    chargers: Mapping[int, SimulatedCharger], req: Mapping[str, Any]
) -> dict[str, Any]:
    """Execute one request against the chargers (pure dispatch; no I/O)."""
    cmd = req.get("cmd")
    try:
        if cmd == "status" and "device_id" not in req:
            return {"ok": True, "chargers": [c.status() for c in chargers.values()]}
        if cmd == "step":
            for c in chargers.values():
                c.model.step(float(req["seconds"]))
            return {"ok": True}
        if cmd == "grid":
            return {"ok": True, **_grid(chargers, req)}
        handler = _HANDLERS.get(str(cmd))
        if handler is None:
            known = sorted([*_HANDLERS, "step", "grid"])
            raise ControlError(f"unknown command {cmd!r}; one of {known}")
        return {"ok": True, **handler(_charger(chargers, req), req)}
    except (ControlError, KeyError, TypeError, ValueError, OSError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


class ControlServer:
    """``async with ControlServer(path, chargers)``: serve the control socket."""

    def __init__(self, path: str | Path, chargers: Mapping[int, SimulatedCharger]) -> None:
        self.path = Path(path)
        self._chargers = chargers
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ControlServer:
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "bad request: not a JSON object"}
        return handle_request(self._chargers, req)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    resp = handle_request(self._chargers, req) if isinstance(req, dict) else None
                except ValueError as exc:
                    resp = None
                    err = str(exc)
                if resp is None:
                    resp = {
                        "ok": False,
                        "error": f"bad request: {locals().get('err', 'not an object')}",
                    }
                writer.write(json.dumps(resp).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
