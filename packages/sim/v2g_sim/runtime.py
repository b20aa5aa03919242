"""The running simulator: chargers on one Modbus line (a pty pair or a given serial device),
stepped in real time (optionally accelerated), with a control socket."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from v2g_sim.charger import SimulatedCharger
from v2g_sim.control import ControlServer
from v2g_sim.ev import EvSpec
from v2g_sim.grid_frequency import GridFrequency
from v2g_sim.modbus_server import ModbusLineServer, RealTimeStepper
from v2g_sim.module import ModuleSpec
from v2g_sim.serial_link import NullModem
from v2g_sim.sunspec_image import ScaleFactors

__all__ = ["SimulatorOptions", "SimulatorRuntime"]


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """What ``v2g-sim serve`` runs. ``port`` None: create a pty pair (parity is then forced
    to "N": Linux ptys reject PARENB)."""

    chargers: int = 1
    first_device_id: int = 1
    seed: int = 0
    port: str | None = None
    baudrate: int = 19200
    parity: str = "E"
    stopbits: int = 1
    socket_path: Path | None = None
    time_scale: float = 1.0
    plug_in: bool = False
    module: ModuleSpec = field(default_factory=ModuleSpec)
    scale_factors: ScaleFactors = field(default_factory=ScaleFactors)
    sensor_gain_error: float = 0.0
    sensor_offset_error_w: float = 0.0
    #: The site's grid frequency, shared by every module on the line (None: random walk).
    grid: GridFrequency | None = None


class SimulatorRuntime:
    """``async with SimulatorRuntime(options) as sim``: ``sim.port`` is the tty to connect to."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.chargers: dict[int, SimulatedCharger] = {}
        for i in range(options.chargers):
            device_id = options.first_device_id + i
            self.chargers[device_id] = SimulatedCharger.create(
                device_id,
                seed=options.seed + 1000 * i,
                spec=options.module,
                scale_factors=options.scale_factors,
                sensor_gain_error=options.sensor_gain_error,
                sensor_offset_error_w=options.sensor_offset_error_w,
                grid=options.grid,
            )
            if options.plug_in:
                self.chargers[device_id].plug_in(
                    EvSpec(ev_id=f"EV-SIM-{device_id}"), now=datetime.now(UTC)
                )
        self.link: NullModem | None = None
        self.port = options.port or ""
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> SimulatorRuntime:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        opts = self.options
        server_port, parity = opts.port, opts.parity
        if server_port is None:
            self.link = self._stack.enter_context(NullModem(seed=opts.seed))
            server_port, self.port, parity = self.link.port_a, self.link.port_b, "N"
        await self._stack.enter_async_context(
            ModbusLineServer(
                list(self.chargers.values()),
                port=server_port,
                baudrate=opts.baudrate,
                parity=parity,
                stopbits=opts.stopbits,
            )
        )
        if opts.socket_path is not None:
            await self._stack.enter_async_context(ControlServer(opts.socket_path, self.chargers))
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        stepper = RealTimeStepper(
            [c.model for c in self.chargers.values()], time_scale=opts.time_scale
        )
        self._stepper_task = group.create_task(stepper.run(), name="sim-stepper")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stepper_task.cancel()
        await self._stack.aclose()
