"""A whole gateway in the test's process, on the simulator: the real OCPP station
(:class:`~v2g_gateway.station.ChargingStation`) over real websockets, the real
:class:`~v2g_gateway.control.loop.ControlLoop` (the real control law) behind a SOCK_SEQPACKET
:class:`~v2g_gateway.control.channel.ControlChannel`, and the simulator's module and EV model
(:class:`~v2g_sim.inprocess.ModelPowerStage`) stepped in real time, as ``v2g_sim.fleet_host``
runs them (the sensor reads the model directly: the INA228 path is covered elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.doubles.station_setup import station_config
from v2g_gateway.control.channel import ControlChannel
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.control.ports import EvChargingNeeds
from v2g_gateway.station import ChargingStation
from v2g_sim.charger import SimContactor, SimulatedCharger
from v2g_sim.ev import EvSpec
from v2g_sim.inprocess import AsyncSleeper, ModelPowerStage
from v2g_sim.modbus_server import RealTimeStepper
from v2g_sim.module import PowerModuleModel


class ModelSensor:
    def __init__(self, model: PowerModuleModel) -> None:
        self._model = model

    def read_power_w(self) -> float:
        return self._model.power_w


class ChargerEvLink:
    """``EvLink`` over the simulated charger (what its EV declares)."""

    def __init__(self, charger: SimulatedCharger) -> None:
        self._charger = charger

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        return self._charger.charging_needs()


@dataclass
class SimGateway:
    identity: str
    charger: SimulatedCharger
    channel: ControlChannel
    station: ChargingStation

    @property
    def power_w(self) -> float:
        return self.charger.model.power_w


@contextlib.asynccontextmanager
async def sim_gateway(
    identity: str,
    csms_url: str,
    state_dir: Path,
    *,
    ev: EvSpec,
    control: ControlSection | None = None,
    **station: Any,
) -> AsyncIterator[SimGateway]:
    """The gateway ``identity`` with ``ev`` plugged in, connected to ``csms_url``."""
    charger = SimulatedCharger.create(seed=1)
    charger.plug_in(ev, now=datetime.now(UTC))
    loop_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    loop = ControlLoop(
        stage=ModelPowerStage(charger.model),
        sensor=ModelSensor(charger.model),
        contactor=SimContactor(charger.model),
        sock=loop_end,
        settings=control or ControlSection(),
        sleeper=AsyncSleeper(),
    )
    config = station_config(csms_url, state_dir, identity=identity, **station)
    try:
        async with ControlChannel(supervisor_end) as channel, asyncio.TaskGroup() as group:
            stepper = group.create_task(RealTimeStepper([charger.model], tick_s=0.01).run())
            loop_task = group.create_task(loop.run(), name=f"control:{identity}")
            await channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=30.0)
            async with ChargingStation(
                config, control=channel, ev_link=ChargerEvLink(charger)
            ) as running:
                yield SimGateway(identity, charger, channel, running)
            channel.request_stop()
            await loop_task
            stepper.cancel()
    finally:
        loop_end.close()
        supervisor_end.close()
