"""The grid-facing half of the core, wired: telemetry ingest, report publishing, the dispatch
runner and the grid operator's HTTP API. The OCPP half (CSMS, fleet) is passed in through the
dispatch ports, so this module knows nothing of websockets."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from v2g_common.telemetry import SiteEvent
from v2g_common.telemetry.activation import ACTIVATION_EVENT
from v2g_common.telemetry.link import BrokerEndpoint
from vpp_core.api import create_api
from vpp_core.api.server import ApiServer
from vpp_core.api.service_report import service_report_router
from vpp_core.api.services import services_router
from vpp_core.config import CoreConfig
from vpp_core.dispatch.clock import SystemClock
from vpp_core.dispatch.journal import DispatchJournal
from vpp_core.dispatch.ports import FleetView, StationCommands
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.dispatch.service import DispatchService
from vpp_core.fleet.store import async_url
from vpp_core.ingest.api import regions_router
from vpp_core.ingest.ingest import TelemetryIngest
from vpp_core.ingest.metrics import IngestMetrics
from vpp_core.ingest.store import TelemetrySqlStore, telemetry_engine
from vpp_core.report_outbox import ReportOutbox
from vpp_core.report_publisher import ReportPublisher
from vpp_core.services.journal import ServiceJournal
from vpp_core.services.manager import FrequencyServices
from vpp_core.supervision import TaskSupervisor

__all__ = ["GridServices", "open_grid_services"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridServices:
    """What is running; ``api_port`` is the bound port (useful with ``port = 0``)."""

    runner: DispatchRunner
    service: DispatchService
    frequency_services: FrequencyServices
    ingest: TelemetryIngest | None
    api_port: int | None


@contextlib.asynccontextmanager
async def open_grid_services(
    config: CoreConfig,
    *,
    fleet: FleetView,
    commands: StationCommands,
    registry: CollectorRegistry,
    supervisor: TaskSupervisor | None = None,
    journal: DispatchJournal | None = None,
    service_journal: ServiceJournal | None = None,
) -> AsyncIterator[GridServices]:
    """Start ingest + report publisher (when ``[ingest]`` is configured), the dispatch runner,
    the frequency services and the API (when ``[api]`` is configured); stop them in reverse
    order. Their tasks run under ``supervisor`` (failures contained and counted). With a
    ``journal`` dispatches are durable: the runner takes back the unfinished ones before the
    API serves; with a ``service_journal`` so are frequency services (``services.durable``)."""
    supervisor = supervisor or TaskSupervisor(registry)
    async with contextlib.AsyncExitStack() as stack:
        ingest, publisher = None, None
        if config.ingest is not None:
            engine = telemetry_engine(async_url(config.fleet.database_url))
            stack.push_async_callback(engine.dispose)
            store = TelemetrySqlStore(engine)
            await store.migrate()
            metrics = IngestMetrics(registry)  # served on the core's /metrics
            ingest = await stack.enter_async_context(
                TelemetryIngest(config.ingest, store, metrics=metrics, supervisor=supervisor)
            )
            collector = ingest.region_collector()
            registry.register(collector)
            stack.callback(registry.unregister, collector)
            outbox = ReportOutbox(engine)  # the fleet database (migration 6)
            publisher = await stack.enter_async_context(
                ReportPublisher(_report_endpoint(ingest), supervisor=supervisor, outbox=outbox)
            )
        runner = await stack.enter_async_context(
            DispatchRunner(
                fleet,
                commands,
                SystemClock(),
                config.dispatch,
                publish_report=publisher.publish if publisher is not None else None,
                supervisor=supervisor,
                journal=journal,
            )
        )
        if publisher is not None:
            # unwound before the runner: dispatches cleared at shutdown leave their reports
            # in the outbox instead of waiting for a PUBACK from a broker that may be down
            stack.callback(publisher.stop_waiting)
        service = DispatchService(runner)
        frequency = await stack.enter_async_context(
            FrequencyServices(
                fleet,
                commands,
                runner.clock,
                config.dispatch,
                supervisor=supervisor,
                in_dispatch=lambda: runner.busy_sessions,
                journal=service_journal,
            )
        )
        if ingest is not None:
            ingest.on_event(_activations_to(frequency))
        api_port = None
        if config.api is not None:
            routers = [services_router(frequency), service_report_router(frequency)]
            if ingest is not None:
                stale_s = ingest.config.stale_after_s
                routers.append(regions_router(ingest.board, stale_after_s=stale_s))
            app = create_api(service, bearer_token=config.api.read_token(), routers=routers)
            api = ApiServer(app, host=config.api.host, port=config.api.port, supervisor=supervisor)
            api_port = (await stack.enter_async_context(api)).port
        yield GridServices(
            runner=runner,
            service=service,
            frequency_services=frequency,
            ingest=ingest,
            api_port=api_port,
        )


def _activations_to(services: FrequencyServices) -> Callable[[SiteEvent], None]:
    """The ingest's listener that hands each ``FREQUENCY_ACTIVATION`` to the services' report.
    The station is the event's charger (a gateway's charger id is its site unless set). A
    summary that cannot be read is logged once per station and left out of the report."""
    refused: set[str] = set()

    def listen(event: SiteEvent) -> None:
        if event.code != ACTIVATION_EVENT:
            return
        station_id = event.charger or event.site
        try:
            services.record_activation(station_id, event.detail)
        except ValueError as exc:
            if station_id not in refused:
                refused.add(station_id)
                log.warning("frequency activation of %s left out of reports: %s", station_id, exc)

    return listen


def _report_endpoint(ingest: TelemetryIngest) -> BrokerEndpoint:
    """The ingest's broker and certificate, under a client id of its own (one MQTT session
    per client id: the publisher must not take over the ingest's persistent session)."""
    base = ingest.link_endpoint()
    return dataclasses.replace(base, client_id=f"{base.client_id}-reports", session_expiry_s=0)
