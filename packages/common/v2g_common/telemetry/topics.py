"""The edge-to-core topic tree (ARCHITECTURE.md, "Edge-to-core telemetry").

```
vpp/v1/region/{region}/site/{site}/summary   one message per summary interval
vpp/v1/region/{region}/site/{site}/event     fail-safe trips, faults, outbox drops ...
vpp/v1/dispatch/{id}/report                  published by the core
```
The broker's ACL binds ``{site}`` to the CN of the publishing certificate, so the topic (not
the payload) is what identifies the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from v2g_common.telemetry.errors import TopicError

__all__ = [
    "SITE_TELEMETRY_FILTER",
    "TOPIC_ROOT",
    "MessageKind",
    "SiteTopic",
    "check_segment",
    "dispatch_report_topic",
    "event_topic",
    "parse_site_topic",
    "summary_topic",
]

TOPIC_ROOT = "vpp/v1"
#: What the core subscribes to: every site's summaries and events in every region.
SITE_TELEMETRY_FILTER = f"{TOPIC_ROOT}/region/+/site/+/+"

MessageKind = Literal["summary", "event"]
_KINDS: tuple[MessageKind, ...] = ("summary", "event")
MAX_SEGMENT_LEN = 64


def check_segment(value: str, *, what: str) -> str:
    """Return ``value`` if it can be one topic level (no wildcards, separators or NUL)."""
    if not value or len(value) > MAX_SEGMENT_LEN:
        raise TopicError(f"{what} {value!r}: must be 1..{MAX_SEGMENT_LEN} characters")
    if set(value) & set("/#+\x00") or not value.isprintable():
        raise TopicError(f"{what} {value!r}: contains '/', '#', '+' or unprintable characters")
    return value


def summary_topic(region: str, site: str) -> str:
    return _site_topic(region, site, "summary")


def event_topic(region: str, site: str) -> str:
    return _site_topic(region, site, "event")


def dispatch_report_topic(dispatch_id: str) -> str:
    return f"{TOPIC_ROOT}/dispatch/{check_segment(dispatch_id, what='dispatch id')}/report"


def _site_topic(region: str, site: str, kind: MessageKind) -> str:
    region = check_segment(region, what="region")
    site = check_segment(site, what="site")
    return f"{TOPIC_ROOT}/region/{region}/site/{site}/{kind}"


@dataclass(frozen=True, slots=True)
class SiteTopic:
    """A parsed site telemetry topic."""

    region: str
    site: str
    kind: MessageKind


def parse_site_topic(topic: str) -> SiteTopic:
    """Split ``vpp/v1/region/{region}/site/{site}/{summary|event}``; raise :class:`TopicError`."""
    parts = topic.split("/")
    if (
        len(parts) != 7
        or "/".join(parts[:2]) != TOPIC_ROOT
        or parts[2] != "region"
        or parts[4] != "site"
    ):
        raise TopicError(f"{topic!r} is not a site telemetry topic")
    kind = parts[6]
    if kind not in _KINDS:
        raise TopicError(f"{topic!r}: unknown message kind {kind!r}")
    region = check_segment(parts[3], what="region")
    site = check_segment(parts[5], what="site")
    return SiteTopic(region=region, site=site, kind="summary" if kind == "summary" else "event")
