"""Errors of the telemetry payloads and topics."""

from __future__ import annotations

__all__ = ["PayloadError", "TelemetryError", "TopicError"]


class TelemetryError(Exception):
    """Base of the telemetry errors."""


class TopicError(TelemetryError):
    """A topic that is not one of the telemetry topics, or a segment that cannot be in one."""


class PayloadError(TelemetryError):
    """A payload that cannot be accepted: not JSON, unknown ``schema``, invalid fields, or a
    site/region that contradicts the topic it arrived on. ``reason`` is a short stable code
    (``json``, ``schema``, ``fields``, ``topic_mismatch``) usable as a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
