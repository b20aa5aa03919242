"""Clients of the simulator's control socket (JSON lines over a Unix socket), for processes
that are not the simulator: the CLI, technician scripts, tests and the gateway's ``simulated``
device adapters (:mod:`v2g_sim.gateway_adapters`). Imports nothing of the simulator's models,
so a gateway process using a simulated device loads only this module and its adapters.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from v2g_gateway.control.ports import EvChargingNeeds

__all__ = [
    "ControlError",
    "RemoteContactor",
    "RemoteEvLink",
    "RemoteI2cBus",
    "RemoteOperatingPoint",
    "SimControlClient",
]


class ControlError(Exception):
    """A control request failed (bad request, or the simulator refused it)."""


class SimControlClient:
    """Blocking client of the control socket (CLI, technician scripts)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(str(path))
        except OSError as exc:
            self._sock.close()
            raise ControlError(f"cannot reach the simulator at {path}: {exc}") from None
        self._file = self._sock.makefile("rwb")

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        self._file.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ControlError("simulator closed the control socket")
        resp: dict[str, Any] = json.loads(line)
        if not resp.get("ok"):
            raise ControlError(str(resp.get("error")))
        return resp

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> SimControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteI2cBus:
    """An smbus2-like bus reaching a running simulator's i2c bus through the control socket."""

    def __init__(self, client: SimControlClient, *, device_id: int) -> None:
        self._client = client
        self._device_id = device_id

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        pending_write: bytes = b""
        last_addr = 0
        for msg in i2c_msgs:
            if msg.flags & 0x0001:
                try:
                    resp = self._client.request(
                        "i2c",
                        device_id=self._device_id,
                        address=int(msg.addr),
                        write=list(pending_write),
                        read=int(msg.len),
                    )
                except ControlError as exc:
                    raise OSError(str(exc)) from None
                data = bytes(resp["data"])
                ctypes.memmove(msg.buf, data, len(data))
                pending_write = b""
            else:
                if pending_write:
                    self._flush(int(msg.addr), pending_write)
                pending_write = bytes(msg)
                last_addr = int(msg.addr)
        if pending_write:
            self._flush(last_addr, pending_write)

    def _flush(self, address: int, data: bytes) -> None:
        try:
            self._client.request(
                "i2c", device_id=self._device_id, address=address, write=list(data)
            )
        except ControlError as exc:
            raise OSError(str(exc)) from None


class RemoteContactor:
    """The contactor of a charger inside a running v2g-sim (its ``contactor`` command)."""

    def __init__(self, client: SimControlClient, *, device_id: int) -> None:
        self._client = client
        self._device_id = device_id

    @property
    def closed(self) -> bool:
        status = self._client.request("status", device_id=self._device_id)
        return bool(status["contactor_closed"])

    def open(self) -> None:
        self._client.request("contactor", device_id=self._device_id, closed=False)

    def close(self) -> None:
        self._client.request("contactor", device_id=self._device_id, closed=True)


class RemoteOperatingPoint:
    """Drives a simulated module to a power and fast-forwards its model until it settles (the
    ``drive`` command with ``settle``), for ``calibrate-sensors``' scripted points."""

    def __init__(self, client: SimControlClient, *, device_id: int) -> None:
        self._client = client
        self._device_id = device_id

    def drive_to(self, power_w: float) -> None:
        self._client.request("drive", device_id=self._device_id, power_w=power_w, settle=True)


class RemoteEvLink:
    """``EvLink`` of a charger inside a running v2g-sim (for a station in another process)."""

    def __init__(self, path: str | Path, *, device_id: int, timeout_s: float = 5.0) -> None:
        self._path = str(path)
        self._device_id = device_id
        self._timeout_s = timeout_s

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        request = {"cmd": "ev-needs", "device_id": self._device_id}
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await asyncio.open_unix_connection(self._path)
                try:
                    writer.write(json.dumps(request).encode() + b"\n")
                    await writer.drain()
                    line = await reader.readline()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            raise ControlError(f"cannot reach the simulator at {self._path}: {exc}") from None
        resp = json.loads(line or b"{}")
        if not resp.get("ok"):
            raise ControlError(str(resp.get("error", "simulator closed the control socket")))
        return _needs_from_json(resp["needs"])


def _needs_from_json(data: dict[str, Any] | None) -> EvChargingNeeds | None:
    if data is None:
        return None
    departure = data.get("departure")
    return EvChargingNeeds(
        **{**data, "departure": datetime.fromisoformat(departure) if departure else None}
    )
