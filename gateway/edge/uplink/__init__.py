"""MQTT-TLS telemetry uplink of the edge gateway: site summaries and events through an
on-disk outbox (store-and-forward)."""

from gateway.edge.uplink.config import UplinkConfig
from gateway.edge.uplink.errors import OutboxError, UplinkError
from gateway.edge.uplink.outbox import DroppedSummaries, Outbox, OutboxEntry
from gateway.edge.uplink.ports import ChargerState, ChargerStateSource
from gateway.edge.uplink.service import (
    ChargerLimits,
    ControlSnapshotSource,
    UplinkService,
    severity_of,
)
from gateway.edge.uplink.summary import SummaryHeader, summarize
from gateway.edge.uplink.uplink import OUTBOX_DROPPED, SiteUplink, UplinkStatus

__all__ = [
    "OUTBOX_DROPPED",
    "ChargerLimits",
    "ChargerState",
    "ChargerStateSource",
    "ControlSnapshotSource",
    "DroppedSummaries",
    "Outbox",
    "OutboxEntry",
    "OutboxError",
    "SiteUplink",
    "SummaryHeader",
    "UplinkConfig",
    "UplinkError",
    "UplinkService",
    "UplinkStatus",
    "severity_of",
    "summarize",
]
