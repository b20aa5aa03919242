"""The core's MQTT-TLS ingest of regional telemetry: validation, de-duplication, the
regional-state store (own tables), ``GET /api/v1/regions`` and Prometheus metrics."""

from vpp_core.ingest.api import RegionsOut, regions_router
from vpp_core.ingest.board import SiteBoard, SiteRecordSource
from vpp_core.ingest.config import IngestConfig
from vpp_core.ingest.errors import IngestError, TelemetryStoreError
from vpp_core.ingest.ingest import TelemetryIngest
from vpp_core.ingest.metrics import IngestMetrics, RegionCollector
from vpp_core.ingest.ports import SiteRecord, TelemetryStore
from vpp_core.ingest.regions import RegionState, aggregate_regions, is_fresh
from vpp_core.ingest.store import TelemetrySqlStore, telemetry_engine

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
