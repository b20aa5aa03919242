"""``v2g-gateway``: the edge gateway daemon.

Starts the control process (fixed-rate loop owning the power module, the sensor and the
contactor) and the asyncio supervisor (lease sources, systemd notification, signals).

Signals: SIGTERM/SIGINT ramp to 0 W, open the contactor and exit 0; SIGHUP reloads limits
and services from the same file; SIGUSR2 stalls the control loop for ``daemon.test_stall_s``
when ``daemon.test_hooks = true`` (for watchdog tests only; never on a field unit).
Exit status: 0 clean stop, 1 failure (systemd restarts), 2 configuration error (it does not),
4 restart asked for by the CSMS (OCPP Reset; systemd restarts after the clean stop).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from v2g_common.config import CONFIG_EXIT_STATUS, ConfigError, exit_on_config_error
from v2g_common.sdnotify import SystemdNotifier
from v2g_gateway.adapters import (
    AdapterError,
    contactor_factory,
    ev_link_factory,
    i2c_bus_factory,
)
from v2g_gateway.config import GatewayConfig, load_gateway_config
from v2g_gateway.control.channel import ControlChannel
from v2g_gateway.control.ports import EvEventSource
from v2g_gateway.control_host import ControlProcess
from v2g_gateway.frequency_log_service import FrequencyLogService
from v2g_gateway.local_lease import LocalLeaseSource
from v2g_gateway.logs import setup_logging
from v2g_gateway.paths_check import path_problems, service_problems
from v2g_gateway.supervisor import StartupError, SupervisedService, Supervisor

if TYPE_CHECKING:
    from v2g_gateway.station.service import StationService
    from v2g_gateway.uplink.service import ChargerLimits, UplinkService

__all__ = ["build_parser", "build_services", "main", "run_daemon"]

log = logging.getLogger("v2g_gateway.daemon")

DEFAULT_CONFIG = Path("/etc/v2g-gateway/gateway.toml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v2g-gateway",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="See docs/installing-gateway.md for the systemd unit and on-site checks.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"gateway TOML file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    return parser


def build_services(config: GatewayConfig) -> list[SupervisedService]:
    """The supervisor's components, one line each. The station (ocpp, websockets) and the
    uplink (paho) are imported only when configured: a bench unit on ``[local_lease]`` loads
    neither."""
    services: list[SupervisedService] = []
    if config.local_lease.enabled:
        services.append(LocalLeaseSource(config.local_lease))
    station: StationService | None = None
    uplink: UplinkService | None = None
    ev_link = None
    if config.station is not None:
        from v2g_gateway.station.service import StationService

        ev_link = ev_link_factory(config.ev_link.kind)(config)
        station = StationService(config.station, ev_link=ev_link)
        services.append(station)
    if config.uplink is not None:
        from v2g_gateway.uplink.service import UplinkService

        uplink = UplinkService(config.uplink, limits=lambda: _charger_limits(station))
        services.append(uplink)
        if isinstance(ev_link, EvEventSource):
            ev_link.report_events_to(uplink.report_event)
    if config.frequency_log.enabled:
        services.append(_frequency_log(config, uplink))
    return services


def _frequency_log(config: GatewayConfig, uplink: UplinkService | None) -> FrequencyLogService:
    """The activation log; with the uplink configured each finished activation is an event
    to the core, and the files are served on request over MQTT."""
    if uplink is None:
        return FrequencyLogService(config.frequency_log)
    from v2g_gateway.activation_files import ActivationFiles

    files = ActivationFiles(config.frequency_log.directory, site=uplink.config.site)
    uplink.serve_requests(files.answer)  # the activation files on request
    report = uplink.report

    def on_activation(summary: dict[str, float | str | bool]) -> None:
        report("FREQUENCY_ACTIVATION", severity="info", detail=summary)

    return FrequencyLogService(config.frequency_log, on_activation=on_activation)


def _charger_limits(station: StationService | None) -> ChargerLimits | None:
    """The uplink's view of what the EV allows, from the station's V2X data."""
    limits = station.ev_limits() if station is not None else None
    if limits is None:
        return None
    from v2g_gateway.uplink.service import ChargerLimits

    max_charge_w, max_discharge_w = limits
    return ChargerLimits(
        v2x_capable=max_discharge_w > 0, max_discharge_w=max_discharge_w, max_charge_w=max_charge_w
    )


async def run_daemon(config: GatewayConfig, *, config_path: Path) -> int:
    notifier = SystemdNotifier.from_environment()
    services = build_services(config)  # before anything runs: an unloadable adapter stops here
    notifier.status("starting the control process")
    control = await ControlProcess.start(config.control_process())
    async with ControlChannel(control.sock) as channel:
        supervisor = Supervisor(
            config=config,
            channel=channel,
            control=control,
            services=services,
            notifier=notifier,
            load_config=lambda: load_gateway_config(config_path),
        )
        try:
            return await supervisor.run()
        except StartupError as exc:
            log.error("start-up failed: %s", exc)
            await control.stop(timeout_s=1.0)
            return 1
        except BaseException:
            log.exception("supervisor failed: stopping the control loop")
            await supervisor.stop_control()
            return 1


def load_adapters(config: GatewayConfig) -> None:
    """Import the code of every configured device kind (opens nothing): a broken or missing
    adapter package shows at ``--check-config`` and before the control process starts."""
    contactor_factory(config.contactor.kind)
    i2c_bus_factory(config.power_sensor.kind)
    ev_link_factory(config.ev_link.kind)


def check_config(config: GatewayConfig, source: Path) -> None:
    """``--check-config``: the adapters import, and every file and device named is there with
    the access the daemon needs; raises :class:`ConfigError` naming each key."""
    load_adapters(config)
    problems = path_problems(config)
    if problems:
        raise ConfigError(str(source), problems)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_gateway_config(args.config)
        if args.check_config:
            check_config(config, args.config)
    except ConfigError as exc:
        exit_on_config_error(exc)
    except AdapterError as exc:
        exit_on_config_error(ConfigError(str(args.config), [("(adapters)", str(exc))]))
    if args.check_config:
        print(f"{args.config}: ok")
        return 0
    problems = service_problems(config)  # devices: the control process names its own
    if problems:
        exit_on_config_error(ConfigError(str(args.config), problems))
    setup_logging(config.daemon.log_level)
    try:
        return asyncio.run(run_daemon(config, config_path=args.config))
    except AdapterError as exc:
        log.error("%s", exc)
        return CONFIG_EXIT_STATUS


if __name__ == "__main__":
    raise SystemExit(main())
