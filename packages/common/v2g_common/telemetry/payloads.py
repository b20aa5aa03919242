"""Versioned JSON payloads of the edge-to-core telemetry, shared by uplink and ingest.

Every payload carries ``schema`` (``vpp.site.summary/1``, ``vpp.site.event/1``). A new field
that old readers may ignore keeps the version; anything else is a new version, and the ingest
accepts every version it knows (a site is upgraded long after the core).

Ordering and de-duplication: ``stream`` names one site outbox (a random id created with the
outbox file) and ``seq`` counts every message of that stream, summaries and events together,
strictly increasing. The core accepts a message once per ``(site, stream, seq)``; QoS 1
redeliveries and re-sends after a gateway restart repeat a ``seq`` it already has. Gaps mean
summaries the outbox dropped (an ``OUTBOX_DROPPED`` event says which).

Sign convention: ``power_w`` positive into the EVs (charging), negative out (discharge);
``available_*_w`` are magnitudes (>= 0).
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from v2g_common.telemetry.errors import PayloadError
from v2g_common.telemetry.topics import SiteTopic

__all__ = [
    "EVENT_SCHEMA",
    "SUMMARY_SCHEMA",
    "EventSeverity",
    "SiteEvent",
    "SiteSummary",
    "TelemetryMessage",
    "decode_message",
    "encode_message",
]

SUMMARY_SCHEMA: Final = "vpp.site.summary/1"
EVENT_SCHEMA: Final = "vpp.site.event/1"
#: Payloads above this are refused before parsing (the broker's max_packet_size is larger).
MAX_PAYLOAD_BYTES = 16 * 1024

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Segment = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^/#+\x00]+$")]
EventSeverity = Literal["info", "warning", "critical"]
DetailValue = str | int | float | bool | None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    site: Segment
    region: Segment
    stream: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Count
    at: AwareDatetime


class SiteSummary(_Envelope):
    """The aggregate state vector of one site (or of the chargers a regional collector covers)."""

    schema_id: Literal["vpp.site.summary/1"] = Field(
        default=SUMMARY_SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    interval_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    chargers: Count
    chargers_reporting: Count
    sessions_connected: Count
    v2x_sessions: Count
    available_discharge_w: NonNegative
    available_charge_w: NonNegative
    power_w: Finite
    soc_min_pct: Percent | None = None
    soc_mean_pct: Percent | None = None
    soc_max_pct: Percent | None = None
    energy_import_wh: NonNegative
    energy_export_wh: NonNegative
    fail_safe: bool
    fail_safe_chargers: Count = 0


class SiteEvent(_Envelope):
    """Something that happened at a site: a fail-safe trip, a fault, a comms-loss episode, an
    outbox drop. ``code`` is a stable upper-case identifier (e.g. ``FAIL_SAFE_TRIP``)."""

    schema_id: Literal["vpp.site.event/1"] = Field(
        default=EVENT_SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")]
    severity: EventSeverity
    charger: Segment | None = None
    detail: dict[str, DetailValue] = Field(default_factory=dict)


TelemetryMessage = SiteSummary | SiteEvent
_MODELS: dict[str, type[SiteSummary] | type[SiteEvent]] = {
    SUMMARY_SCHEMA: SiteSummary,
    EVENT_SCHEMA: SiteEvent,
}
_KIND_OF_SCHEMA = {SUMMARY_SCHEMA: "summary", EVENT_SCHEMA: "event"}


def encode_message(message: TelemetryMessage) -> bytes:
    """The wire form: compact JSON with the ``schema`` key."""
    return message.model_dump_json(by_alias=True).encode()


def decode_message(topic: SiteTopic, payload: bytes) -> TelemetryMessage:
    """Validate a payload received on ``topic``; raise :class:`PayloadError`.

    The topic is what the broker's ACL vouches for, so a payload naming another site or
    region, or a summary on an event topic, is refused rather than trusted.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("size", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("json", str(exc)) from None
    schema = data.get("schema") if isinstance(data, dict) else None
    model = _MODELS.get(schema) if isinstance(schema, str) else None
    if model is None:
        raise PayloadError("schema", f"unknown or missing schema {schema!r}")
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError("fields", _first_errors(exc)) from None
    _check_matches_topic(message, topic)
    return message


def _check_matches_topic(message: TelemetryMessage, topic: SiteTopic) -> None:
    if _KIND_OF_SCHEMA[message.schema_id] != topic.kind:
        raise PayloadError("topic_mismatch", f"{message.schema_id} on a {topic.kind} topic")
    if (message.site, message.region) != (topic.site, topic.region):
        raise PayloadError(
            "topic_mismatch",
            f"payload says site {message.site!r} region {message.region!r}, "
            f"topic says {topic.site!r} {topic.region!r}",
        )


def _first_errors(exc: ValidationError, *, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
