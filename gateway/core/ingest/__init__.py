"""The core's MQTT-TLS ingest of regional telemetry: validation, de-duplication, the
regional-state store (own tables), ``GET /api/v1/regions`` and Prometheus metrics."""

from gateway.core.ingest.api import RegionsOut, regions_router
from gateway.core.ingest.board import SiteBoard, SiteRecordSource
from gateway.core.ingest.config import IngestConfig
from gateway.core.ingest.errors import IngestError, TelemetryStoreError
from gateway.core.ingest.ingest import TelemetryIngest
from gateway.core.ingest.metrics import IngestMetrics, RegionCollector
from gateway.core.ingest.ports import SiteRecord, TelemetryStore
from gateway.core.ingest.regions import RegionState, aggregate_regions, is_fresh
from gateway.core.ingest.store import TelemetrySqlStore, telemetry_engine

__all__ = [
    "IngestConfig",
    "IngestError",
    "IngestMetrics",
    "RegionCollector",
    "RegionState",
    "RegionsOut",
    "SiteBoard",
    "SiteRecord",
    "SiteRecordSource",
    "TelemetryIngest",
    "TelemetrySqlStore",
    "TelemetryStore",
    "TelemetryStoreError",
    "aggregate_regions",
    "is_fresh",
    "regions_router",
    "telemetry_engine",
]
