"""Serving simulated chargers as Modbus RTU devices on one serial line (pymodbus SimDevice).

Several chargers share a line by device id; ids nobody owns, and chargers with an injected
``comms_timeout``, get silence (as on RS-485), not an exception response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from v2g_sim.charger import SimulatedCharger
from v2g_sim.module import PowerModuleModel
from v2g_sim.sunspec_image import SunSpecImage, WriteRejected

__all__ = ["ModbusLineServer", "RealTimeStepper", "sim_device"]


def sim_device(charger: SimulatedCharger) -> SimDevice:
    """A pymodbus ``SimDevice`` whose registers are rendered from the model on every read."""
    image = charger.image

    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is None:
            registers[: image.size] = image.render()
            return None
        if charger.model.comms_down:
            return None  # a module that stops answering does not act on writes either
        return _write(image, address, [int(v) for v in set_values])

    block = SimData(
        address=image.base_address, count=image.size, values=0, datatype=DataType.REGISTERS
    )
    return SimDevice(id=charger.device_id, simdata=[block], action=action)


def _write(image: SunSpecImage, address: int, values: list[int]) -> ExcCodes | None:
    try:
        image.apply_write(address, values)
    except WriteRejected:
        return ExcCodes.ILLEGAL_ADDRESS
    return None


class ModbusLineServer:
    """``async with ModbusLineServer(chargers, port=...)``: serve them on a tty."""

    def __init__(
        self,
        chargers: Sequence[SimulatedCharger],
        *,
        port: str,
        baudrate: int = 19200,
        parity: str = "E",
        stopbits: int = 1,
    ) -> None:
        self._by_id = {c.device_id: c for c in chargers}
        self._port, self._baudrate, self._parity, self._stopbits = port, baudrate, parity, stopbits
        self._server: ModbusSerialServer | None = None

    def _outgoing(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        charger = self._by_id.get(data[0])
        if charger is None or charger.model.comms_down:
            return b""  # silence: unknown id or module not answering
        return data

    async def __aenter__(self) -> ModbusLineServer:
        self._server = ModbusSerialServer(
            [sim_device(c) for c in self._by_id.values()],
            framer=FramerType.RTU,
            port=self._port,
            baudrate=self._baudrate,
            parity=self._parity,
            stopbits=self._stopbits,
            trace_packet=self._outgoing,
        )
        await self._server.serve_forever(background=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


class RealTimeStepper:
    """Steps models from a monotonic clock, ``time_scale`` sim seconds per real second."""

    def __init__(
        self,
        models: Sequence[PowerModuleModel],
        *,
        time_scale: float = 1.0,
        tick_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._models = list(models)
        self._scale = time_scale
        self._tick_s = tick_s
        self._clock = clock

    def add(self, model: PowerModuleModel) -> None:
        self._models.append(model)

    async def run(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(self._tick_s)
            now = self._clock()
            dt = (now - last) * self._scale
            last = now
            for model in self._models:
                model.step(dt)
