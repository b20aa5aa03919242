"""``vpp-core``: the central VPP core's entry point and station registry CLI.

    vpp-core --config etc/core.toml run
    vpp-core --config etc/core.toml stations add CS-0001 --profile 2 --site s1 --region r1 \\
        --generate-password
    vpp-core --config etc/core.toml stations list [--json]
    vpp-core --config etc/core.toml stations disable CS-0001
    vpp-core --config etc/core.toml db migrate
    vpp-core --config etc/core.toml tokens|certificates|device-model ...   (equipment_cli)

``run`` restores the fleet from the database, serves OCPP, writes the fleet behind, serves
Prometheus metrics, and exits cleanly on SIGTERM/SIGINT (connections closed, last write
flushed). Passwords never travel on the command line (``ps`` shows it): they are generated
and printed once, or read from standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import start_http_server

from v2g_common.config import ConfigError, exit_on_config_error, load_config
from v2g_common.redaction import redact_credentials
from v2g_common.sdnotify import SystemdNotifier
from vpp_core.cluster.bus import BusError
from vpp_core.cluster.config import cluster_problems
from vpp_core.cluster.wiring import NodeSide, csms_node_side, new_fleet, node_services
from vpp_core.config import CoreConfig
from vpp_core.csms import CsmsError, CsmsMetrics, CsmsServer
from vpp_core.csms.equipment import Equipment, EquipmentSync
from vpp_core.csms.errors import SigningCaUnusable
from vpp_core.equipment_cli import COMMANDS as EQUIPMENT_COMMANDS
from vpp_core.equipment_cli import add_equipment_commands, run_equipment_command
from vpp_core.fleet import (
    FleetError,
    FleetState,
    FleetStore,
    StationRegistry,
    WriteBehind,
)
from vpp_core.fleet.dispatch_journal import SqlDispatchJournal
from vpp_core.fleet.equipment import EquipmentStore
from vpp_core.fleet.registry import new_password
from vpp_core.fleet.service_journal import SqlServiceJournal
from vpp_core.fleet.writer_thread import StoreThread
from vpp_core.grid_services import GridServices, open_grid_services
from vpp_core.heap import HeapPolicy
from vpp_core.supervision import TaskSupervisor

__all__ = ["main", "run_core"]

log = logging.getLogger("vpp-core")
DEFAULT_CONFIG = Path("/etc/vpp-core/core.toml")


# -- run ------------------------------------------------------------------------------------


async def run_core(
    config: CoreConfig,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[CsmsServer], None] | None = None,
) -> int:
    """Run the core until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None); its
    exit status. ``[cluster] role`` picks what runs: the whole core (``embedded``), a CSMS
    node or a coordinator (``vpp_core.cluster``)."""
    stop = stop or _stop_on_signals()
    if config.cluster.role == "coordinator":
        from vpp_core.cluster.coordinator import run_coordinator  # nats-py: cluster roles only

        return await run_coordinator(config, stop=stop)
    async with contextlib.AsyncExitStack() as stack:
        node = None
        if config.cluster.role == "csms":
            node = await stack.enter_async_context(csms_node_side(config.cluster))
        await _run_csms_core(config, node, stop, on_ready)
    return 0


async def _run_csms_core(
    config: CoreConfig,
    node: NodeSide | None,
    stop: asyncio.Event,
    on_ready: Callable[[CsmsServer], None] | None,
) -> None:
    store = await FleetStore.open(config.fleet.database_url)
    try:
        fleet = new_fleet(config, node)
        snapshot = await store.load(samples_in_memory=config.fleet.samples_in_memory)
        fleet.restore(snapshot)
        log.info(
            "fleet restored: %d stations, %d active sessions",
            len(fleet.entries),
            len(fleet.sessions()),
        )
        writes = StoreThread(
            config.fleet.database_url, quarantine_file=config.fleet.quarantine_file
        )
        await writes.start()
        try:
            core = _Core(config, store, writes, fleet, snapshot.registry_revision, node)
            await core.serve(stop, on_ready)
        finally:
            await writes.close()
    finally:
        await store.close()


class _Core:
    """The running core's parts, wired: fleet, write-behind, metrics, CSMS."""

    def __init__(
        self,
        config: CoreConfig,
        store: FleetStore,
        writes: StoreThread,
        fleet: FleetState,
        registry_revision: int,
        node: NodeSide | None = None,
    ) -> None:
        self.config = config
        self.node = node
        self.store = store
        self.fleet = fleet
        self.registry_revision = registry_revision
        self.writer = WriteBehind(
            fleet,
            writes,  # SQLAlchemy's per-row work stays off the OCPP event loop
            interval_s=config.fleet.write_interval_s,
            max_queued_rows=config.fleet.max_queued_rows,
        )
        self.metrics = CsmsMetrics(node.registry if node is not None else None)
        self.supervisor = TaskSupervisor(self.metrics.registry)
        records = EquipmentStore(store.engine)
        self.equipment = Equipment.from_config(config.csms, records=records)
        self.equipment_sync = EquipmentSync(self.equipment, records)
        self.grid: GridServices | None = None
        self.metrics.watch_fleet(
            last_write_lag_s=lambda: self.writer.last_lag_s,
            unwritten_age_s=self.writer.unwritten_age_s,
            dropped_samples=self.writer.dropped_samples,
            active_sessions=fleet.active_session_count,
            quarantined_rows=lambda: self.writer.quarantined_rows,
            dropped_rows=self.writer.dropped_rows,
        )

    async def serve(
        self, stop: asyncio.Event, on_ready: Callable[[CsmsServer], None] | None
    ) -> None:
        notifier = SystemdNotifier.from_environment()
        if self.config.metrics.port:
            m = self.config.metrics
            start_http_server(m.port, m.host, registry=self.metrics.registry)
        await self.equipment_sync.refresh()  # idTokens, certificates (revocations)
        keep = self.supervisor.keep_running  # every task below is contained (supervision.py)
        async with asyncio.TaskGroup() as tasks:
            writer = keep("fleet-write-behind", self.writer.run)
            tasks.create_task(writer, name="fleet-write-behind")
            equipment = tasks.create_task(
                keep(
                    "equipment-refresh",
                    lambda: self.equipment_sync.run(self.config.fleet.registry_refresh_s),
                ),
                name="equipment-refresh",
            )
            async with (
                CsmsServer(
                    self.config.csms,
                    self.fleet,
                    metrics=self.metrics,
                    supervisor=self.supervisor,
                    equipment=self.equipment,
                    rehash_store=self.store,
                    on_connect=self._adopt if self.node is not None else None,
                ) as csms,
                self._role_services(csms) as grid,
            ):
                self.grid = grid
                refresh = tasks.create_task(
                    keep("registry-refresh", lambda: self._refresh_registry(csms)),
                    name="registry-refresh",
                )
                busy = grid.runner.has_running_dispatch if grid is not None else _never
                heap = HeapPolicy(self.config.runtime, busy=busy)
                heap.start()
                heap_task = tasks.create_task(keep("heap-policy", heap.run), name="heap-policy")
                gc_watch = self.metrics.watch_gc()
                api = f", API on port {grid.api_port}" if grid and grid.api_port else ""
                notifier.notify("READY=1", f"STATUS=serving OCPP on port {csms.port}{api}")
                if on_ready is not None:
                    on_ready(csms)
                await stop.wait()
                notifier.notify("STOPPING=1")
                self.supervisor.hurry()  # a task in its restart back-off goes at once
                refresh.cancel()
                equipment.cancel()
                heap_task.cancel()
                gc.callbacks.remove(gc_watch)
            self.writer.stop()  # after the connections closed: their disconnects are written

    async def _adopt(self, station_id: str) -> None:
        """A cluster's CSMS node takes a station's state from the database as it connects
        (another node may have held it until now)."""
        samples = self.config.fleet.samples_in_memory
        snapshot = await self.store.load_station(station_id, samples_in_memory=samples)
        self.fleet.adopt_station(snapshot)

    def _role_services(
        self, csms: CsmsServer
    ) -> contextlib.AbstractAsyncContextManager[GridServices | None]:
        """Embedded: the grid services on the CSMS's commands; a CSMS node: its cluster side
        (fleet events out, station commands in, heartbeats, health endpoint)."""
        if self.node is not None:
            return node_services(self.node, csms, supervisor=self.supervisor)
        return open_grid_services(
            self.config,
            fleet=self.fleet,
            commands=csms.commands,
            registry=self.metrics.registry,
            supervisor=self.supervisor,
            journal=SqlDispatchJournal(self.store.engine, registry=self.metrics.registry),
            service_journal=SqlServiceJournal(self.store.engine, registry=self.metrics.registry),
        )

    async def _refresh_registry(self, csms: CsmsServer) -> None:
        """Apply registry changes made with the CLI (only changed rows are read)."""
        failing = False
        while True:
            await asyncio.sleep(self.config.fleet.registry_refresh_s)
            try:
                changed, self.registry_revision = await self.store.stations_since(
                    self.registry_revision
                )
                if changed:
                    await csms.apply_registry(changed)
            except FleetError as exc:
                if not failing:
                    log.error("cannot re-read the station registry: %s", exc)
                failing = True
            else:
                failing = False


def _never() -> bool:
    return False


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


# -- stations / db --------------------------------------------------------------------------


async def _with_registry(config: CoreConfig, action: Callable[[StationRegistry], object]) -> object:
    store = await FleetStore.open(config.fleet.database_url)
    try:
        result = action(StationRegistry(store))
        return await result if asyncio.iscoroutine(result) else result
    finally:
        await store.close()


def _read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "generate_password", False):
        return new_password()
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    return None


def _stations_add(config: CoreConfig, args: argparse.Namespace) -> int:
    password = _read_password(args)

    async def add(registry: StationRegistry) -> None:
        await registry.add(
            args.station_id,
            security_profile=args.profile,
            site=args.site,
            region=args.region,
            password=password,
            now=datetime.now(UTC),
        )

    asyncio.run(_with_registry(config, add))
    print(f"added {args.station_id} (security profile {args.profile})")
    if args.generate_password and password is not None:
        print(f"password: {password}")
    return 0


def _stations_list(config: CoreConfig, args: argparse.Namespace) -> int:
    async def listing(registry: StationRegistry) -> object:
        return await registry.list()

    entries = asyncio.run(_with_registry(config, listing))
    assert isinstance(entries, list)
    rows = [{k: v for k, v in asdict(e).items() if k != "password_hash"} for e in entries]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'station':<24} {'profile':>7} {'enabled':>7}  site / region")
    for row in rows:
        enabled = "yes" if row["enabled"] else "no"
        where = f"{row['site']} / {row['region']}"
        print(f"{row['station_id']:<24} {row['security_profile']:>7} {enabled:>7}  {where}")
    return 0


def _stations_enable(config: CoreConfig, args: argparse.Namespace, enabled: bool) -> int:
    asyncio.run(_with_registry(config, lambda r: r.set_enabled(args.station_id, enabled)))
    print(f"{args.station_id} {'enabled' if enabled else 'disabled'}")
    return 0


def _stations_password(config: CoreConfig, args: argparse.Namespace) -> int:
    password = _read_password(args)
    if password is None:
        raise FleetError("give --password-stdin or --generate-password")
    asyncio.run(_with_registry(config, lambda r: r.set_password(args.station_id, password)))
    print(
        f"password of {args.station_id} changed"
        + (f": {password}" if args.generate_password else "")
    )
    return 0


def _db_migrate(config: CoreConfig, _args: argparse.Namespace) -> int:
    async def migrate() -> int:
        store = await FleetStore.open(config.fleet.database_url)
        try:
            return max(await store.schema_versions())
        finally:
            await store.close()

    print(f"fleet database at schema version {asyncio.run(migrate())}")
    return 0


# -- argument parsing -----------------------------------------------------------------------


def _password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    source.add_argument(
        "--generate-password", action="store_true", help="generate one and print it"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpp-core", description="V2G VPP core: OCPP CSMS + fleet."
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="core.toml (default %(default)s)"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    # --config is accepted after the subcommand too: ``vpp-core run --config etc/core.toml``
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="core.toml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", parents=[common], help="serve OCPP, keep the fleet state, write it behind"
    )
    stations = commands.add_parser("stations", help="the station registry").add_subparsers(
        dest="stations_command", required=True
    )
    add = stations.add_parser("add", parents=[common], help="register a station")
    add.add_argument("station_id")
    add.add_argument(
        "--profile", type=int, choices=[1, 2, 3], required=True, help="OCPP security profile"
    )
    add.add_argument("--site", required=True)
    add.add_argument("--region", required=True)
    _password_options(add)
    listing = stations.add_parser("list", parents=[common], help="list registered stations")
    listing.add_argument("--json", action="store_true")
    for name in ("enable", "disable"):
        stations.add_parser(name, parents=[common], help=f"{name} a station").add_argument(
            "station_id"
        )
    password = stations.add_parser(
        "set-password", parents=[common], help="replace a station's password"
    )
    password.add_argument("station_id")
    _password_options(password)
    db = commands.add_parser("db", help="the fleet database").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("migrate", parents=[common], help="create or upgrade the schema")
    add_equipment_commands(commands, common)
    return parser


def _dispatch(config: CoreConfig, args: argparse.Namespace) -> int:
    if args.command == "run":
        return asyncio.run(run_core(config))
    if args.command == "db":
        return _db_migrate(config, args)
    if args.command in EQUIPMENT_COMMANDS:
        return run_equipment_command(config, args)
    sub = args.stations_command
    if sub in ("enable", "disable"):
        return _stations_enable(config, args, sub == "enable")
    handlers = {"add": _stations_add, "list": _stations_list, "set-password": _stations_password}
    return handlers[sub](config, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_credentials(*logging.getLogger().handlers)  # no credential in any record
    try:
        config = load_config(CoreConfig, args.config)
        problems = cluster_problems(
            config.cluster, database_url=config.fleet.database_url, has_api=config.api is not None
        )
        if problems:
            raise ConfigError(str(args.config), problems)
    except ConfigError as exc:
        exit_on_config_error(exc)
    try:
        return _dispatch(config, args)
    except SigningCaUnusable as exc:  # configured, unreadable: exit 2, not restarted
        exit_on_config_error(ConfigError(str(args.config), [(exc.keys, exc.reason)]))
    except (FleetError, CsmsError, BusError) as exc:
        print(f"vpp-core: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
