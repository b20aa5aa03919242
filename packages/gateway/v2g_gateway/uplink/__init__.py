"""MQTT-TLS telemetry uplink of the edge gateway: site summaries and events through an
on-disk outbox (store-and-forward)."""

from v2g_gateway.uplink.config import UplinkConfig
from v2g_gateway.uplink.errors import OutboxError, UplinkError
from v2g_gateway.uplink.outbox import DroppedSummaries, Outbox, OutboxEntry
from v2g_gateway.uplink.ports import ChargerState, ChargerStateSource
from v2g_gateway.uplink.service import (
    ChargerLimits,
    ControlSnapshotSource,
    UplinkService,
    severity_of,
)
from v2g_gateway.uplink.summary import SummaryHeader, summarize
from v2g_gateway.uplink.uplink import OUTBOX_DROPPED, SiteUplink, UplinkStatus

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
