"""Errors of the telemetry uplink."""

from __future__ import annotations

__all__ = ["OutboxError", "UplinkError"]


class UplinkError(Exception):
    """Base of the uplink's errors."""


class OutboxError(UplinkError):
    """The on-disk outbox cannot be used (corrupt, wrong schema version, another site's file)."""
