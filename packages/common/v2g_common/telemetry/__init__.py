"""MQTT telemetry shared by the edge uplink and the core ingest: topics, versioned payload
models, and the paho-to-asyncio link both sides use."""

from v2g_common.telemetry.errors import PayloadError, TelemetryError, TopicError
from v2g_common.telemetry.payloads import (
    EVENT_SCHEMA,
    SUMMARY_SCHEMA,
    EventSeverity,
    SiteEvent,
    SiteSummary,
    TelemetryMessage,
    decode_message,
    encode_message,
)
from v2g_common.telemetry.topics import (
    SITE_TELEMETRY_FILTER,
    MessageKind,
    SiteTopic,
    check_segment,
    dispatch_report_topic,
    event_topic,
    parse_site_topic,
    summary_topic,
)

__all__ = [
    "EVENT_SCHEMA",
    "SITE_TELEMETRY_FILTER",
    "SUMMARY_SCHEMA",
    "EventSeverity",
    "MessageKind",
    "PayloadError",
    "SiteEvent",
    "SiteSummary",
    "SiteTopic",
    "TelemetryError",
    "TelemetryMessage",
    "TopicError",
    "check_segment",
    "decode_message",
    "dispatch_report_topic",
    "encode_message",
    "event_topic",
    "parse_site_topic",
    "summary_topic",
]
