"""MQTT-TLS telemetry uplink of the edge gateway: site summaries and events through an
on-disk outbox (store-and-forward).

The names below are imported on first use (``v2g_common.lazy``): importing
``v2g_gateway.uplink.config`` loads no MQTT code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from v2g_common.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__ = lazy_exports(
    __name__,
    {
        "UplinkConfig": "config",
        "OutboxError": "errors",
        "UplinkError": "errors",
        "DroppedSummaries": "outbox",
        "Outbox": "outbox",
        "OutboxEntry": "outbox",
        "ChargerState": "ports",
        "ChargerStateSource": "ports",
        "ChargerLimits": "service",
        "ControlSnapshotSource": "service",
        "UplinkService": "service",
        "severity_of": "service",
        "SummaryHeader": "summary",
        "summarize": "summary",
        "OUTBOX_DROPPED": "uplink",
        "SiteUplink": "uplink",
        "UplinkStatus": "uplink",
    },
)
