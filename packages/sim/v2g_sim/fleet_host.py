"""Many edge gateways in one process: ``python -m v2g_sim.fleet_host --socket S
--status-file F gw-1.toml gw-2.toml ...``.

Each ``gateway.toml`` is a real gateway's configuration and runs the real code: the OCPP
station and the MQTT uplink exactly as ``v2g-gateway`` builds them
(:func:`v2g_gateway.daemon.build_services`), and a :class:`~v2g_gateway.control.loop.ControlLoop`
with the real control law behind a SOCK_SEQPACKET pair and a
:class:`~v2g_gateway.control.channel.ControlChannel`. What differs from the daemon, and why:

* the control loops are tasks of this process, not one process each (two CPU cores do not
  hold fifty), paced by :class:`~v2g_sim.inprocess.AsyncSleeper`;
* the power stage is :class:`~v2g_sim.inprocess.ModelPowerStage` over the simulator's
  module model instead of SunSpec over Modbus RTU (``[power_module]`` is ignored here), the
  sensor is the real INA228 driver over the simulated i2c bus, the contactor the simulated
  relay (``[power_sensor] kind`` / ``[contactor] kind`` must say ``simulated``);
* the simulated chargers are served on one v2g-sim control socket (``--socket``; every
  gateway's ``[simulator] socket`` must name it), so ``v2g-sim plug-in --socket S
  --device-id N`` and the EV link work as with ``v2g-sim serve``.

The fail-safes are the control law's own: a station that loses its CSMS stops marking
contact and the loop ramps to 0 W and opens the contactor after ``comms_loss_timeout_s``.
SIGTERM/SIGINT: every loop ramps to 0 W and opens its contactor, then the process exits 0.
``--status-file`` is rewritten (atomically) every second with each gateway's control
snapshot and event counts, for the demo's view and the e2e tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from v2g_common.config import ConfigError
from v2g_gateway.config import GatewayConfig, load_gateway_config
from v2g_gateway.control.channel import ControlChannel
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.daemon import build_services
from v2g_gateway.hw.power_sensor.calibration import load_calibration
from v2g_gateway.hw.power_sensor.driver import Ina228
from v2g_gateway.supervisor import SupervisedService
from v2g_sim.charger import SimContactor, SimulatedCharger
from v2g_sim.control import ControlServer
from v2g_sim.inprocess import AsyncSleeper, ModelPowerStage
from v2g_sim.modbus_server import RealTimeStepper

__all__ = ["HostedGateway", "main", "run_host"]

log = logging.getLogger("v2g_sim.fleet_host")

STATUS_EVERY_S = 1.0


class HostedGateway:
    """One gateway: its simulated charger, control loop, channel and supervisor services."""

    def __init__(self, config: GatewayConfig) -> None:
        _check_simulated(config)
        self.config = config
        self.identity = config.station.identity if config.station else f"gw-{id(self)}"
        self.charger = SimulatedCharger.create(
            config.simulator.device_id, seed=config.simulator.device_id
        )
        self.events: Counter[str] = Counter()
        self.channel: ControlChannel | None = None

    def _sensor(self) -> Ina228:
        ps = self.config.power_sensor
        sensor = Ina228(
            self.charger.i2c,
            address=ps.address,
            shunt_ohm=ps.shunt_ohm,
            max_current_a=ps.max_current_a,
            voltage_scale=ps.voltage_scale,
            adc_range_low=ps.adc_range_low,
            calibration=load_calibration(ps.calibration_file, ps.channel),
        )
        sensor.initialize()
        return sensor

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: then no new leases, ramp to 0 W, contactor open."""
        loop_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        control = ControlLoop(
            stage=ModelPowerStage(self.charger.model),
            sensor=self._sensor(),
            contactor=SimContactor(self.charger.model),
            sock=loop_end,
            settings=self.config.control,
            sleeper=AsyncSleeper(),
        )
        try:
            async with ControlChannel(supervisor_end) as channel, asyncio.TaskGroup() as group:
                self.channel = channel
                loop_task = group.create_task(control.run(), name=f"control:{self.identity}")
                await channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=30.0)
                helpers = [
                    group.create_task(self._count_events(channel), name="events"),
                    *self._start_services(group, build_services(self.config), channel),
                ]
                await stop.wait()
                for task in helpers:
                    task.cancel()
                channel.request_stop()
                await loop_task
        finally:
            loop_end.close()
            supervisor_end.close()

    def _start_services(
        self,
        group: asyncio.TaskGroup,
        services: list[SupervisedService],
        channel: ControlChannel,
    ) -> list[asyncio.Task[None]]:
        return [
            group.create_task(
                _keep_running(service, channel, self.identity),
                name=f"{service.name}:{self.identity}",
            )
            for service in services
        ]

    async def _count_events(self, channel: ControlChannel) -> None:
        queue = channel.subscribe_events()
        while True:
            event = await queue.get()
            self.events[str(event.code)] += 1

    def status(self) -> dict[str, Any]:
        snap = self.channel.snapshot() if self.channel is not None else None
        row: dict[str, Any] = {"device_id": self.charger.device_id, "events": dict(self.events)}
        if snap is not None and snap.cycles > 0:
            row.update(
                power_w=round(snap.power_w, 1),
                commanded_w=round(snap.commanded_w, 1),
                lease_power_w=round(snap.lease_power_w, 1),
                soc_pct=snap.soc_pct,
                ev_connected=snap.ev_connected,
                contactor_closed=snap.contactor_closed,
                fail_safe=snap.fail_safe,
                trip_code=snap.trip_code,
                energy_export_wh=round(snap.energy_export_wh, 3),
                energy_import_wh=round(snap.energy_import_wh, 3),
                lateness_p99_us=round(snap.lateness_p99_us),
            )
        return row


async def _keep_running(service: SupervisedService, channel: ControlChannel, who: str) -> None:
    """A service that fails is logged and restarted after a pause (as systemd would restart
    the daemon); its absence meanwhile is covered by the lease and the comms-loss timer."""
    while True:
        try:
            await service.run(channel)
        except Exception:
            log.exception("%s: service %s failed; restarting in 2 s", who, service.name)
        await asyncio.sleep(2.0)


def _check_simulated(config: GatewayConfig) -> None:
    if config.power_sensor.kind != "simulated" or config.contactor.kind != "simulated":
        raise ConfigError(
            "fleet host", [("power_sensor/contactor", "kind must be 'simulated' here")]
        )


def write_status(path: Path, gateways: list[HostedGateway]) -> None:
    """Atomically replace ``path`` with every gateway's status."""
    data = {
        "pid": os.getpid(),
        "time_s": time.time(),
        "gateways": {g.identity: g.status() for g in gateways},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


async def _status_writer(path: Path, gateways: list[HostedGateway]) -> None:
    while True:
        write_status(path, gateways)
        await asyncio.sleep(STATUS_EVERY_S)


async def run_host(
    configs: list[GatewayConfig], *, socket_path: Path, status_file: Path | None
) -> None:
    """Run every gateway until SIGTERM/SIGINT; they all stop at 0 W, contactors open."""
    gateways = [HostedGateway(c) for c in configs]
    chargers = {g.charger.device_id: g.charger for g in gateways}
    if len(chargers) != len(gateways):
        raise ConfigError("fleet host", [("simulator.device_id", "must be unique per host")])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stepper = RealTimeStepper([c.model for c in chargers.values()])
    async with ControlServer(socket_path, chargers), asyncio.TaskGroup() as group:
        background = [group.create_task(stepper.run(), name="sim-stepper")]
        if status_file is not None:
            background.append(group.create_task(_status_writer(status_file, gateways)))
        runs = [group.create_task(g.run(stop), name=f"gateway:{g.identity}") for g in gateways]
        await asyncio.gather(*runs)
        if status_file is not None:
            write_status(status_file, gateways)
        for task in background:
            task.cancel()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m v2g_sim.fleet_host",
        description="Run many simulated edge gateways (real station, uplink and control law) "
        "in one process.",
    )
    parser.add_argument("--socket", type=Path, required=True, help="v2g-sim control socket")
    parser.add_argument("--status-file", type=Path, help="JSON status, rewritten every second")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("configs", type=Path, nargs="+", help="gateway.toml files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        configs = [load_gateway_config(p) for p in args.configs]
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_host(configs, socket_path=args.socket, status_file=args.status_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
